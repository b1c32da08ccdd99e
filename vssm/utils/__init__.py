"""Utilities a package user may want: ``vssm.utils.flops`` counts FLOPs as the papers do; ``vssm.utils.allocator``
makes glibc's malloc keep freed memory (what the launchers do for CPU speed)."""

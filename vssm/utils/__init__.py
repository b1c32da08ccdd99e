"""Utilities a package user may want: ``vssm.utils.flops`` counts FLOPs as the papers do."""

"""Shared utilities: registries, options, logging, distribution, images and file access.

Import the submodules directly (``from basicsr.utils.img_util import tensor2img``); this package imports nothing
on its own.
"""

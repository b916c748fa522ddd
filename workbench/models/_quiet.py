"""Silence one import-time notice: diffusers imports CLIP image processors we never use, and
without torchvision transformers warns about each. Only that notice is dropped."""

import logging


class _NoTorchvisionNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision" not in record.getMessage()


logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionNotice())

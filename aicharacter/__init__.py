"""The seed's import name for the Python SDK: ``from aicharacter import Client``.

The SDK itself is ``char_pipeline.client``; this package only gives it the name the Character
AI API's documentation uses, so its samples run as written.
"""

from char_pipeline.client import ApiError, Client, Result

__all__ = ["ApiError", "Client", "Result"]

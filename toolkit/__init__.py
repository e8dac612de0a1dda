"""embbert-toolkit: train EmbBERT, convert it to int8 TFLite, prove it on a board."""

__version__ = "0.1.0"

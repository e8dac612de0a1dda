"""The exact rewrites of the converter's int8 flatbuffer, one per module; convert/optimize.py runs them in order."""

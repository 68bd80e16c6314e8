"""Geometry of the canonical face frame: alignment maths and the landmark hull mask.

The lowest floor of the package (numpy and OpenCV only): faces/, masks/, pretrained/ and the
models all build on it, and it imports none of them.
"""

"""Test doubles shipped with the package: fake encoders, a loopback Jina-API server, tiny ONNX models.

Nothing here produces real Jina vectors; names and outputs say so.
"""

"""Deployment: ONNX export and ONNX Runtime checks, and reloading a pruned run without unpickling."""

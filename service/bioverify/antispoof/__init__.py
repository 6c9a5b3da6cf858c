"""Voice anti-spoofing: AASIST on onnxruntime, explainable signal checks, and their fusion.

``aasist_arch`` (the torch model) and ``export_aasist`` (the ONNX export run when the model
pack is built) import torch; nothing in the serving path does.
"""

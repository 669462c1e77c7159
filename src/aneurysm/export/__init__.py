"""A trained run as files another machine can run without this package: ONNX graphs of the fold
models, the contract they are read under (``model.json``) and a stand-alone ``predict.py``."""

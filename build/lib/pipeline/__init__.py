"""LingShift: how fine-tuning moves linguistic knowledge in transformer encoders.

A reproduction of Durrani, Sajjad & Dalvi (2021). The package holds the library
(resources, corpora, models, extraction, probing) and the stage entry points that
``dvc.yaml`` calls through ``python -m pipeline``.
"""

__version__ = "0.1.0"

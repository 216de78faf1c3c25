"""The LingShift REST API and results page (Flask).

Not built yet: the API is the subject of issue 6. This package exists so the layout and
the install (``pip install -e .``) are already in their final shape.
"""

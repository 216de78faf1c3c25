"""The claims engine: the specification (``claims.yaml``), units and their aggregation, bootstrap
intervals of the layer statistics, and the five claims' evaluation."""

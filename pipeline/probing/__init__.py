"""Linear probing, split by responsibility.

- :mod:`~pipeline.probing.linear`: the fitted probe (weights, predict, save, load); all the API needs;
- :mod:`~pipeline.probing.solver`: training (elastic-net gradient, Adam, learning-rate schedule, epoch selection);
- :mod:`~pipeline.probing.views`: how a probe reads activations (per layer, concatenated, neuron subset(s), ablation);
- :mod:`~pipeline.probing.lca`: Linguistic Correlation Analysis (neuron ranking, minimal set);
- :mod:`~pipeline.probing.batched`: many probes of one input at once, each seed with its own batch order,
  with weight masks (oracle over seeds, nested top-k prefixes);
- :mod:`~pipeline.probing.subsets`: the salience-gated neuron analysis's batched pieces (random k-sets,
  ablation, raw and standardised rankings, grid-scan minimal set);
- :mod:`~pipeline.probing.control`: control tasks and selectivity;
- :mod:`~pipeline.probing.inputs`: input validation shared by the above.

Nothing here imports transformers; the modules are imported one by one (this file imports none of them).
"""

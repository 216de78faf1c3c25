"""Statistics of probe results: lexical baseline, sentence/hierarchical bootstrap, verdicts, tags, salience."""

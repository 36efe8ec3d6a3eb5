"""Octopus's ingest benchmark (`./octopus bench`): one load generator, three scenarios in one
run (bare broker, the usual tutorial flow, Octopus's ingest), and the targets of BRIEF.md."""

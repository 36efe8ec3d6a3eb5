"""Runs the whole Octopus platform natively: broker, database, Node-RED, portal, simulators."""

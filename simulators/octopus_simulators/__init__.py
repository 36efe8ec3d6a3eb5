"""Octopus's demo devices: simulated MQTT sensors (`python -m octopus_simulators.sensors`).

The pure parts (fleet layout, value drift, payloads, bad messages, settings) are separate
modules so that they can be tested without a broker; `sensors` owns the MQTT connections.
"""

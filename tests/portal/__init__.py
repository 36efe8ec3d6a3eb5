"""Tests of the portal (webapp/octopus_portal) against a real PostgreSQL and Mosquitto."""

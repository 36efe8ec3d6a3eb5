"""The topic contract's building blocks as the portal checks them (doc/topics.md)."""
import re

# A device topic level as the ingest's topic.js accepts it: not empty, no '/', '+', '#' or
# control character, not starting with '$', at most 128 characters.
LEVEL = r"[^/+#$\x00-\x1f][^/+#\x00-\x1f]{0,127}"
LEVEL_PATTERN = re.compile(LEVEL)


def device_errors(site, room, device):
    """What is wrong with a device's site, room and name as topic levels (empty: fine)."""
    errors = [f"{label}: one topic level (no '/', '+' or '#', not starting with '$')."
              for label, value in (("Site", site), ("Room", room), ("Device", device))
              if not (isinstance(value, str) and is_level(value))]
    if site == "octopus":
        errors.append("Site: 'octopus' is the platform's own topic space.")
    return errors


def is_level(text):
    """Whether `text` can be one level (site, room, device, attribute) of a device topic."""
    return bool(LEVEL_PATTERN.fullmatch(text))

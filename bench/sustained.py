"""Whether a QoS 0 run of compare.sh sustained its offered rate.

As a program: `sustained.py RESULT.json RATE` exits 0 when the run (8 pairs,
RATE messages/s per publisher) was sustained; compare.sh imports `sustained`.
"""
import json
import sys

PAIRS = 8


def sustained(result, rate):
    """Delivered at least 0.999 of what was sent, and received at least 0.95
    of the offered rate (back-pressure can slow publishers without loss)."""
    return (
        "error" not in result
        and (result["messages"]["delivered_fraction"] or 0) >= 0.999
        and result["throughput"]["received_per_s"] >= 0.95 * PAIRS * rate
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.exit(0 if sustained(json.load(f), int(sys.argv[2])) else 1)

"""Energy maths: pure functions over arrays (integration, counters, flows, accounting, reports)."""

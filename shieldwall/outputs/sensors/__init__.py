"""Sensor exports: the node's active indicators as Zeek Intel files, Suricata rules and
datasets, an RPZ zone and a CSV, each holding only what the sensor can match faithfully.

`active` reads the active set through the store's `Access`, `forms` says what each pattern
means to a sensor, one module per output renders it, `export` writes them all atomically and
`watch` rewrites them when the active set changes.
"""

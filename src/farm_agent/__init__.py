"""farm agent: the render-node program. It speaks HTTP to the master and imports nothing of the
master's packages, so a render node can install and run it alone."""

VERSION = "0.1.0"

"""What leaves the node towards the member's own tools: sensor exports and alert outputs."""

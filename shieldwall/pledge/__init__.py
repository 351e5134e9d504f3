"""The Pledge: each member's cyber hygiene checks (passwords, patches, mail) and posture.

Every check reads a member's own export and returns a report object whose renderings hold
counts, names and reasons only; the posture is built from those counts, never from inputs.
"""

"""HTTP routes and the blob trigger: parse and validate input once, start orchestrations, answer.

A face: imported only by ``function_app``; imports ``ferry`` (never the other faces but for
``api`` modules among themselves)."""

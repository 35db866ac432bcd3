"""The gateway's pure rules: account names and passwords, and rate-limit windows."""

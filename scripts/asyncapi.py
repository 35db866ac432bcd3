"""Write the AsyncAPI document of all events and commands (generated from contracts) to a file."""

import json
import sys
from pathlib import Path

from contracts.asyncapi import asyncapi_document

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/asyncapi.json")
    target.write_text(json.dumps(asyncapi_document(), indent=2) + "\n")
    print(f"wrote {target} ({len(asyncapi_document()['channels'])} channels)")

"""The dashboard as NiceGUI's simulated `user` loads it: the real app, pointed at the test system's gateway."""

from bitfolio_web.main import run
from bitfolio_web.settings import Settings

run(Settings(env="test"))

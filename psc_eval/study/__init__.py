"""The human naturalness study of Table 4: create stimuli, serve them to observers, tally.

``create_study`` renders the stimuli and a private manifest, ``StudyServer`` /
``serve_study`` serve the observer page (stdlib http.server, no framework, offline),
``tally_study`` turns responses.jsonl into Table 4 with Wilson and two-way bootstrap
intervals. See docs/study.md for running a study with colleagues on a local network.
"""

from .create import StudyConfig, create_study
from .server import StudyServer, serve_study
from .store import load_study, read_responses
from .tally import TallyConfig, format_table, tally_study, two_way_bootstrap, wilson_interval

__all__ = [
    "StudyConfig", "StudyServer", "TallyConfig", "create_study", "format_table", "load_study",
    "read_responses", "serve_study", "tally_study", "two_way_bootstrap", "wilson_interval",
]

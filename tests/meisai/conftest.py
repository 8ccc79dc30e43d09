"""Fixtures for the 楽楽明細 wire: the emulator served over real HTTP on a free loopback port.

``emulator`` starts a fresh emulator (own data dir, tenant ``demo`` with a known token, imports ``active`` for
0.2 s) in a thread of the test process and stops it afterwards. Its helpers talk to the emulator's admin
endpoint over HTTP, the way a developer would with curl.
"""

from __future__ import annotations

import pytest
from meisai_testlib import ACCOUNT, TOKEN, EmulatorServer, start_emulator

from meisai_emulator.tenants import create_tenant


@pytest.fixture
def emulator(tmp_path):
    """A running emulator with tenant ``demo`` (token ``TOKEN``); ``.base_url``, ``.token``, ``.client()``."""
    data_dir = tmp_path / "emulator"
    app, root_url, stop = start_emulator(data_dir)
    create_tenant(app.extensions["meisai_emulator"].store, ACCOUNT, TOKEN)
    yield EmulatorServer(root_url=root_url, account=ACCOUNT, token=TOKEN, data_dir=data_dir, app=app)
    stop()

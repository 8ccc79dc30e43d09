"""Command line of the emulator.

    python -m meisai_emulator [--host H] [--port P] [--data-dir D] [--import-delay S]   start the server
    python -m meisai_emulator create-tenant ACCOUNT [--token T]                          add a tenant
    python -m meisai_emulator list-tenants
    python -m meisai_emulator faults ACCOUNT [--latency-ms N] [--maintenance off|json|html] ...
    python -m meisai_emulator faults ACCOUNT --next-count 3 --next-fault 502 --next-on import   the next 3 POSTs

The data dir defaults to $MEISAI_EMULATOR_DATA_DIR or ./instance/meisai_emulator. Starting the server makes
sure the demo tenant ``demo`` exists with the token from $MEISAI_DEMO_TOKEN (or keeps/generates one) and
prints its base URL and token.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import DEFAULT_IMPORT_DELAY
from .models import Store
from .tenants import DEMO_ACCOUNT, MAINTENANCE_MODES, NEXT_FAULTS, NEXT_SCOPES, TenantError

DEFAULT_DATA_DIR = os.environ.get("MEISAI_EMULATOR_DATA_DIR", os.path.join("instance", "meisai_emulator"))


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=f"default: {DEFAULT_DATA_DIR}")

    parser = argparse.ArgumentParser(
        prog="python -m meisai_emulator", description="楽楽明細 API emulator", parents=[common]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument(
        "--import-delay",
        type=float,
        default=float(os.environ.get("MEISAI_EMULATOR_IMPORT_DELAY", DEFAULT_IMPORT_DELAY)),
        help="seconds an import stays 'active' (default %(default)s)",
    )
    parser.add_argument("--admin-token", default=os.environ.get("MEISAI_EMULATOR_ADMIN_TOKEN"))
    commands = parser.add_subparsers(dest="command")

    create = commands.add_parser(
        "create-tenant", parents=[common], help="add a tenant with the default settings"
    )
    create.add_argument("account")
    create.add_argument("--token", help="API token (generated when omitted)")

    commands.add_parser("list-tenants", parents=[common], help="list tenants and their base URL paths")

    faults = commands.add_parser("faults", parents=[common], help="show or change a tenant's fault knobs")
    faults.add_argument("account")
    faults.add_argument("--reset", action="store_true", help="clear every knob first")
    faults.add_argument("--latency-ms", type=int, dest="latency_ms")
    faults.add_argument("--maintenance", choices=MAINTENANCE_MODES)
    faults.add_argument(
        "--failure-rate", type=float, dest="failure_rate", help="0..1 share of calls answered 5xx"
    )
    faults.add_argument(
        "--failure-status", type=int, dest="failure_status", help="500, 502 or 504 (default 500)"
    )
    faults.add_argument(
        "--rate-limit", type=int, dest="rate_limit", help="requests per window; 0 = unlimited"
    )
    faults.add_argument(
        "--rate-window", type=float, dest="rate_window_s", help="window in seconds (default 60)"
    )
    faults.add_argument(
        "--import-delay", type=float, dest="import_delay_s", help="seconds 'active' for this tenant"
    )
    faults.add_argument(
        "--state-latency-ms", type=int, dest="state_latency_ms", help="extra delay on state calls"
    )
    faults.add_argument(
        "--refuse-csv-encoding", type=int, choices=(0, 1), dest="refuse_csv_encoding",
        help="1 = answer every CSV as not Windows-31J (E_FILE_ENCODING)",
    )
    faults.add_argument(
        "--next-count", type=int, dest="next_count",
        help="count-based: the next N API requests (see --next-on) answer --next-fault, then it is spent",
    )
    faults.add_argument("--next-fault", choices=NEXT_FAULTS, dest="next_fault", help="default maintenance")
    faults.add_argument("--next-on", choices=NEXT_SCOPES, dest="next_on", help="which requests count (default any)")
    faults.add_argument(
        "--next-slow-ms", type=int, dest="next_slow_ms", help="how long a 'slow' answer waits (default 20000)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data_dir = getattr(args, "data_dir", DEFAULT_DATA_DIR)
    try:
        if args.command == "create-tenant":
            return _create_tenant(Store(data_dir), args)
        if args.command == "list-tenants":
            return _list_tenants(Store(data_dir))
        if args.command == "faults":
            return _faults(Store(data_dir), args)
    except TenantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _serve(args, data_dir)


def _create_tenant(store: Store, args) -> int:
    from .tenants import create_tenant

    tenant, token = create_tenant(store, args.account, args.token)
    print(f"tenant:    {tenant.account}")
    print(f"base path: /{tenant.account}/  (base URL http://HOST:PORT/{tenant.account}/)")
    print(f"API token: {token}")
    return 0


def _list_tenants(store: Store) -> int:
    from .tenants import list_tenants

    for tenant in list_tenants(store):
        print(f"{tenant.account}\t/{tenant.account}/\ttoken …{tenant.token[-4:]}")
    return 0


def _faults(store: Store, args) -> int:
    from .tenants import FAULT_FIELDS, get_faults, get_tenant, set_faults

    changes = {name: getattr(args, name) for name in FAULT_FIELDS if getattr(args, name, None) is not None}
    if changes or args.reset:
        knobs = set_faults(store, args.account, changes, reset=args.reset)
    else:
        tenant = get_tenant(store, args.account)
        if tenant is None:
            raise TenantError(f"no tenant {args.account!r}")
        knobs = get_faults(store, tenant.id)
    for name, value in knobs.as_dict().items():
        print(f"{name}: {value}")
    return 0


def _serve(args, data_dir: str) -> int:
    from werkzeug.serving import make_server

    from . import create_app
    from .models import Store
    from .tenants import ensure_demo_tenant

    token = ensure_demo_tenant(Store(data_dir), os.environ.get("MEISAI_DEMO_TOKEN") or None)
    app = create_app(data_dir, import_delay=args.import_delay, admin_token=args.admin_token)
    server = make_server(args.host, args.port, app, threaded=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    root = f"http://{host}:{server.port}/"
    print("楽楽明細 emulator", flush=True)
    print(f"  UI:          {root}", flush=True)
    print(f"  demo tenant: {root}{DEMO_ACCOUNT}/   (admin UI {root}{DEMO_ACCOUNT}/backadmin/)", flush=True)
    print(f"  demo token:  {token}", flush=True)
    print(f"  data dir:    {os.path.abspath(data_dir)}", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["meisai_emulator"].close()
    return 0


def _stop(_signum, _frame):
    # SIGTERM (from `make run`) ends like Ctrl-C: the worker thread and the database close cleanly.
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

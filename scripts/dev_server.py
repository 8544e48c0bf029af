"""`make run`: migrate, load the demo data and serve the API for local development.

    python scripts/dev_server.py                 # http://127.0.0.1:8000
    HOST=0.0.0.0 PORT=8080 python scripts/dev_server.py

Fake-payments mode: without STRIPE_SECRET_KEY (environment or .env), the project's Stripe
stand-in (backend/tests/fake_stripe.py, Stripe's wire format) is started on 127.0.0.1:
FAKE_STRIPE_PORT (12111) and STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET
and STRIPE_API_BASE point at it, for seed_demo and the server alike. It keeps its state in
FAKE_STRIPE_STATE (.fake_stripe.json) so the intents of the demo database survive a restart,
accepts Stripe's test payment methods (pm_card_visa pays, pm_card_chargeDeclined is declined)
and delivers signed webhooks to /api/payment/webhook/. With a key set, Stripe is used as is.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 (only to recognise them)


def stripe_is_configured() -> bool:
    """As the server will see it: the environment, then the .env file."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    from django.conf import settings

    return bool(settings.STRIPE_SECRET_KEY)


def payment_instructions(stripe_base: str, port: str) -> str:
    from backend.tests.fake_stripe import API_KEY

    return (
        f"Fake payments: no STRIPE_SECRET_KEY, so the Stripe stand-in serves {stripe_base}.\n"
        "  Pay an intent from POST /api/payment/create-intent/ (decline: pm_card_chargeDeclined):\n"
        f"  curl -s -X POST {stripe_base}/v1/payment_intents/<payment_intent_id>/confirm \\\n"
        f"    -u {API_KEY}: -d payment_method=pm_card_visa\n"
        f"  Its signed webhook reaches http://127.0.0.1:{port}/api/payment/webhook/;"
        " POST /api/payment/confirm/ works too."
    )


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # `kill` stops the server and the stand-in like ^C does (a background job ignores SIGINT).
    signal.signal(signal.SIGTERM, _stop)
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    port = os.environ.get("PORT", "").strip() or "8000"
    env = {**os.environ, "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true")}
    os.environ["DJANGO_DEBUG"] = env["DJANGO_DEBUG"]
    fake = None
    if not stripe_is_configured():
        from backend.tests.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, FakeStripe

        api_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
        state_file = Path(os.environ.get("FAKE_STRIPE_STATE", "") or ROOT / ".fake_stripe.json")
        stripe_port = int(os.environ.get("FAKE_STRIPE_PORT", "") or 12111)
        try:
            fake = FakeStripe(
                port=stripe_port,
                webhook_url=f"http://{api_host}:{port}/api/payment/webhook/",
                state_file=state_file,
            ).start()
        except OSError as error:
            print(
                f"dev_server: cannot start the Stripe stand-in on 127.0.0.1:{stripe_port} "
                f"({error.strerror}); is another `make run` running? Set FAKE_STRIPE_PORT.",
                file=sys.stderr,
            )
            return 1
        env.update(
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=fake.base_url,
        )

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)

    try:
        manage("migrate", "--noinput")
        seeded = subprocess.run(
            [sys.executable, "manage.py", "seed_demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stderr.write(seeded.stderr)
        print(seeded.stdout, end="", flush=True)
        if seeded.returncode:
            return seeded.returncode
        if fake is not None:
            print(payment_instructions(fake.base_url, port), flush=True)
        # Last before the server's own output, so it is on screen: the password to sign in with.
        for line in seeded.stdout.splitlines():
            if line.startswith(("Demo password", "Passwords unchanged")):
                print(line, flush=True)
        extra = sys.argv[1:]  # e.g. --noreload
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{host}:{port}", *extra], cwd=ROOT, env=env
        )
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.terminate()
            return server.wait()
    except subprocess.CalledProcessError as error:
        return error.returncode
    finally:
        if fake is not None:
            fake.stop()


if __name__ == "__main__":
    sys.exit(main())

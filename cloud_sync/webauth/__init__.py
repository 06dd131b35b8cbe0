"""Web sign-in pieces shared by the gateway's LAN dashboard and central's console: scrypt
passwords, the account store (users, sessions, audit, per-account-and-address lockout), the
per-address sign-in throttle and the one-time setup code. cloud_sync imports nothing of
``edge``; the dashboard imports these from here."""

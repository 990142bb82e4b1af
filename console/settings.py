"""Settings of the console, read from environment variables.

Every variable is documented in .env.example. A bad value stops start-up with an
ImproperlyConfigured error naming the variable. Without any variable set the console runs with
embedded defaults: SQLite and a filesystem Celery broker under var/, so `make run` works at once.
"""

from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from console.conf.env import (
    crontab_schedule,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    persistent_fernet_key,
    persistent_secret,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONSOLE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Unset secrets fall back to random ones kept in var/ (mode 600): a single-host install runs at
# once; several web hosts must share SECRET_KEY and CONSOLE_SECRET_KEYS through the environment.
SECRET_KEY = env_str("SECRET_KEY") or persistent_secret(VAR_DIR / "django-secret-key")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY: must be at least 32 characters long")

# Keys that encrypt the secrets of managed servers (MultiFernet: newest first).
CONSOLE_SECRET_KEYS = [k.strip() for k in (env_str("CONSOLE_SECRET_KEYS") or "").split(",") if k]
if not CONSOLE_SECRET_KEYS:
    CONSOLE_SECRET_KEYS = [persistent_fernet_key(VAR_DIR / "fernet.key")]
for _key in CONSOLE_SECRET_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "CONSOLE_SECRET_KEYS: each key must be 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "console",
    "clusters",
    "users",
    "backups",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.access.personas_context",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
else:
    DATABASES = {"default": sqlite_database(VAR_DIR / "console.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in: local accounts, LDAP, rate limiting -------------------------------------------
LDAP_SERVER_URI = env_str("LDAP_SERVER_URI", "")
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend"]
if LDAP_SERVER_URI:
    import ldap
    from django_auth_ldap.config import (
        GroupOfNamesType,
        GroupOfUniqueNamesType,
        LDAPSearch,
        PosixGroupType,
    )

    AUTHENTICATION_BACKENDS.append("console.auth.ConsoleLDAPBackend")
    AUTH_LDAP_SERVER_URI = LDAP_SERVER_URI
    AUTH_LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
    AUTH_LDAP_BIND_DN = env_str("LDAP_BIND_DN", "")
    AUTH_LDAP_BIND_PASSWORD = env_str("LDAP_BIND_PASSWORD", "")
    AUTH_LDAP_CONNECTION_OPTIONS = {
        ldap.OPT_NETWORK_TIMEOUT: env_int("LDAP_TIMEOUT", 5, minimum=1),
        ldap.OPT_TIMEOUT: env_int("LDAP_TIMEOUT", 5, minimum=1),
        ldap.OPT_REFERRALS: 0,
    }
    _user_base = env_str("LDAP_USER_BASE_DN", "")
    if not _user_base:
        raise ImproperlyConfigured("LDAP_USER_BASE_DN: must be set when LDAP_SERVER_URI is set")
    AUTH_LDAP_USER_SEARCH = LDAPSearch(
        _user_base, ldap.SCOPE_SUBTREE, env_str("LDAP_USER_FILTER", "(uid=%(user)s)")
    )
    AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    _group_base = env_str("LDAP_GROUP_BASE_DN", "")
    if not _group_base:
        raise ImproperlyConfigured("LDAP_GROUP_BASE_DN: must be set when LDAP_SERVER_URI is set")
    _group_types = {
        "groupOfNames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
        "groupOfUniqueNames": (GroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
        "posixGroup": (PosixGroupType, "(objectClass=posixGroup)"),
    }
    _group_type_name = env_str("LDAP_GROUP_TYPE", "groupOfNames")
    if _group_type_name not in _group_types:
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE: expected one of {', '.join(_group_types)}, got {_group_type_name!r}"
        )
    _group_cls, _group_filter = _group_types[_group_type_name]
    AUTH_LDAP_GROUP_SEARCH = LDAPSearch(_group_base, ldap.SCOPE_SUBTREE, _group_filter)
    AUTH_LDAP_GROUP_TYPE = _group_cls()
    AUTH_LDAP_ALWAYS_UPDATE_USER = True
    AUTH_LDAP_CACHE_TIMEOUT = 0
    # LDAP group DN of each persona; by default cn=<persona> under the group base.
    LDAP_PERSONA_GROUPS = {
        persona: env_str(f"LDAP_GROUP_{persona.upper()}", f"cn={persona},{_group_base}")
        for persona in ("dba", "helpdesk", "manager", "auditor")
    }
AUTHENTICATION_BACKENDS.append("django.contrib.auth.backends.ModelBackend")

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "console.auth.locked_out"
AXES_USERNAME_CALLABLE = "console.auth.axes_username"  # one counter for "Alice" and "alice"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Session, CSRF and HTTPS ------------------------------------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole domain to HTTPS in browsers for months; it is the domain
        # owner's opt-in (SECURE_HSTS_PRELOAD=true), so check --deploy does not nag about it.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.split(":", 1)[0] not in ("redis", "rediss", "filesystem", "memory"):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL: unsupported scheme in {CELERY_BROKER_URL.split(':', 1)[0]!r}; "
        "use redis:// or leave it unset for the embedded filesystem broker"
    )
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600, minimum=60)}
)
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_IGNORE_RESULT = True  # a Job row holds each result
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "console.reap_jobs": {"task": "console.reap_jobs", "schedule": 60.0},
    "clusters.rediscover_all": {"task": "clusters.rediscover_all", "schedule": 3600.0},
    "clusters.expire_registrations": {"task": "clusters.expire_registrations", "schedule": 600.0},
}
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 15, minimum=1)
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 120, minimum=5)

# --- Executor ---------------------------------------------------------------------------------
EXECUTOR_CONNECT_TIMEOUT = env_int("EXECUTOR_CONNECT_TIMEOUT", 10, minimum=1)
EXECUTOR_COMMAND_TIMEOUT = env_int("EXECUTOR_COMMAND_TIMEOUT", 300, minimum=1)
EXECUTOR_STATEMENT_TIMEOUT = env_int("EXECUTOR_STATEMENT_TIMEOUT", 60, minimum=1)
EXECUTOR_OUTPUT_LIMIT = env_int("EXECUTOR_OUTPUT_LIMIT", 4000, minimum=100)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Database console API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Two models have a "status" with different choices; name both enums (check --deploy).
    "ENUM_NAME_OVERRIDES": {
        "AuditStatusEnum": "console.models.AuditEntry.Status",
        "JobStatusEnum": "console.models.Job.Status",
        "ClusterKindEnum": "clusters.models.Cluster.Kind",
        "NodeStateEnum": "clusters.models.NodeStatus.State",
        "AlertStateEnum": "clusters.models.Alert.State",
        "PersonStateEnum": "users.models.Person.State",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"asyncssh": {"level": "WARNING"}},
}

# --- Monitoring (clusters.collect) ------------------------------------------------------------
CLUSTERS_COLLECT_SECONDS = env_int("CLUSTERS_COLLECT_SECONDS", 30, minimum=5)
CLUSTERS_COLLECT_WORKERS = env_int("CLUSTERS_COLLECT_WORKERS", 16, minimum=1)
CLUSTERS_COLLECT_DISK_EVERY = env_int("CLUSTERS_COLLECT_DISK_EVERY", 10, minimum=1)
CLUSTERS_SAMPLE_RAW_DAYS = env_int("CLUSTERS_SAMPLE_RAW_DAYS", 7, minimum=1)
CLUSTERS_SAMPLE_ROLLUP_DAYS = env_int("CLUSTERS_SAMPLE_ROLLUP_DAYS", 90, minimum=1)
CELERY_BEAT_SCHEDULE["clusters.collect_all"] = {
    "task": "clusters.collect_all",
    "schedule": float(CLUSTERS_COLLECT_SECONDS),
}
CELERY_BEAT_SCHEDULE["clusters.rollup_samples"] = {
    "task": "clusters.rollup_samples",
    "schedule": 3600.0,
}

# --- Backup schedules (backups.schedule) -------------------------------------------------------
# Each policy's own PeriodicTask lives in the database (DatabaseScheduler). A cron time that
# passed this long ago without a run starting is recorded as missed (and alerts).
BACKUPS_MISSED_GRACE_SECONDS = env_int("BACKUPS_MISSED_GRACE_SECONDS", 900, minimum=0)
# How long a catalog's pgBackRest `check` waits for its WAL segment to reach the repository.
BACKUPS_CHECK_ARCHIVE_TIMEOUT = env_int("BACKUPS_CHECK_ARCHIVE_TIMEOUT", 30, minimum=1)
CELERY_BEAT_SCHEDULE["backups.detect_missed"] = {"task": "backups.detect_missed", "schedule": 60.0}
# Backup assurance (backups.assurance): each test restore policy has its own PeriodicTask; the
# WAL archive of every cluster with a catalog is checked this often (seconds).
BACKUPS_ARCHIVE_CHECK_SECONDS = env_int("BACKUPS_ARCHIVE_CHECK_SECONDS", 900, minimum=60)
CELERY_BEAT_SCHEDULE["backups.scheduled_archive_checks"] = {
    "task": "backups.scheduled_archive_checks",
    "schedule": float(BACKUPS_ARCHIVE_CHECK_SECONDS),
}

# --- Alert mails (clusters.notify), through Django's email settings ----------------------------
ALERT_EMAIL_TO = env_list("ALERT_EMAIL_TO")  # every alert mail goes here (and to a rule's own)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)  # seconds; never block a cycle for long
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "dbconsole@localhost")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set one of them, not both")

# --- The weekly backup report by mail (backups.report_mail), through the email settings above --
BACKUP_REPORT_RECIPIENTS = env_list("BACKUP_REPORT_RECIPIENTS")  # empty: no mail is sent
BACKUP_REPORT_SCHEDULE = env_str("BACKUP_REPORT_SCHEDULE", "0 7 * * 1") or ""  # Mondays 07:00
CELERY_BEAT_SCHEDULE["backups.mail_report_scheduled"] = {
    "task": "backups.mail_report_scheduled",
    "schedule": crontab_schedule("BACKUP_REPORT_SCHEDULE", BACKUP_REPORT_SCHEDULE),
}

# --- People and database accounts (users) -----------------------------------------------------
# The directory sync reads people with the sign-in's LDAP server and account (LDAP_*).
PEOPLE_LDAP_URI = LDAP_SERVER_URI
PEOPLE_LDAP_BIND_DN = env_str("LDAP_BIND_DN", "")
PEOPLE_LDAP_BIND_PASSWORD = env_str("LDAP_BIND_PASSWORD", "")
PEOPLE_LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
PEOPLE_LDAP_TIMEOUT = env_int("LDAP_TIMEOUT", 5, minimum=1)
PEOPLE_LDAP_BASE_DN = env_str("PEOPLE_LDAP_BASE_DN") or env_str("LDAP_USER_BASE_DN", "")
PEOPLE_LDAP_FILTER = env_str("PEOPLE_LDAP_FILTER", "(objectClass=inetOrgPerson)")
PEOPLE_LDAP_ATTR_UID = env_str("PEOPLE_LDAP_ATTR_UID", "uid")
PEOPLE_LDAP_ATTR_NAME = env_list("PEOPLE_LDAP_ATTR_NAME", "displayName,cn")  # first one set
PEOPLE_LDAP_ATTR_MAIL = env_str("PEOPLE_LDAP_ATTR_MAIL", "mail")
PEOPLE_LDAP_ATTR_MEMBER_OF = env_str("PEOPLE_LDAP_ATTR_MEMBER_OF", "")  # e.g. memberOf
PEOPLE_LDAP_GROUP_BASE_DN = env_str("PEOPLE_LDAP_GROUP_BASE_DN") or env_str(
    "LDAP_GROUP_BASE_DN", ""
)
PEOPLE_LDAP_GROUP_FILTER = env_str("PEOPLE_LDAP_GROUP_FILTER", "(objectClass=groupOfNames)")
PEOPLE_LDAP_GROUP_MEMBER_ATTR = env_str("PEOPLE_LDAP_GROUP_MEMBER_ATTR", "member")
PEOPLE_LDAP_GROUP_NAME_ATTR = env_str("PEOPLE_LDAP_GROUP_NAME_ATTR", "cn")
PEOPLE_LDAP_DISABLED_FILTER = env_str("PEOPLE_LDAP_DISABLED_FILTER", "(shadowExpire=1)")
for _name in ("PEOPLE_LDAP_FILTER", "PEOPLE_LDAP_GROUP_FILTER", "PEOPLE_LDAP_DISABLED_FILTER"):
    _value = globals()[_name]
    if _value and not (_value.startswith("(") and _value.endswith(")")):
        raise ImproperlyConfigured(f"{_name}: an LDAP filter in parentheses, got {_value!r}")
PEOPLE_SYNC_MAX_LEFT_SHARE = env_float("PEOPLE_SYNC_MAX_LEFT_SHARE", 0.10, 0.0, 1.0)
PEOPLE_SYNC_SECONDS = env_int("PEOPLE_SYNC_SECONDS", 900, minimum=60)
# Account lifecycle (docs/accounts.md): how MariaDB/MySQL passwords are set. mysql_native_password:
# the console computes the hash, the clear password never crosses the wire; server: IDENTIFIED BY,
# the server's default plugin (the password is sent, as a bound parameter, over the connection).
USERS_MARIADB_PASSWORD_PLUGIN = env_str("USERS_MARIADB_PASSWORD_PLUGIN", "mysql_native_password")
if USERS_MARIADB_PASSWORD_PLUGIN not in ("mysql_native_password", "server"):
    raise ImproperlyConfigured(
        "USERS_MARIADB_PASSWORD_PLUGIN: mysql_native_password or server, "
        f"got {USERS_MARIADB_PASSWORD_PLUGIN!r}"
    )
# Naming rules of personal accounts, separated by spaces: regular expressions with one {uid}.
PEOPLE_ACCOUNT_NAME_RULES = (
    env_str("PEOPLE_ACCOUNT_NAME_RULES", "^{uid}$ ^{uid}_adm$ ^p_{uid}$") or ""
).split()
for _rule in PEOPLE_ACCOUNT_NAME_RULES:
    if _rule.count("{uid}") != 1:
        raise ImproperlyConfigured(
            f"PEOPLE_ACCOUNT_NAME_RULES: each rule holds {{uid}} once, got {_rule!r}"
        )
PEOPLE_ACCOUNTS_IMPORT_SECONDS = env_int("PEOPLE_ACCOUNTS_IMPORT_SECONDS", 3600, minimum=60)
CELERY_BEAT_SCHEDULE["users.sync_directory_scheduled"] = {
    "task": "users.sync_directory_scheduled",
    "schedule": float(PEOPLE_SYNC_SECONDS),
}
CELERY_BEAT_SCHEDULE["users.import_accounts_all"] = {
    "task": "users.import_accounts_all",
    "schedule": float(PEOPLE_ACCOUNTS_IMPORT_SECONDS),
}
# Offboarding (users.actions.offboarding): a person the directory sync finds left is offboarded
# at once, or waits for a helpdesk user's or DBA's approval when PEOPLE_OFFBOARD_APPROVAL is on.
# An incomplete offboarding (a server was down) is tried again every PEOPLE_OFFBOARD_RETRY_SECONDS.
PEOPLE_OFFBOARD_APPROVAL = env_bool("PEOPLE_OFFBOARD_APPROVAL", False)
PEOPLE_OFFBOARD_RETRY_SECONDS = env_int("PEOPLE_OFFBOARD_RETRY_SECONDS", 300, minimum=10)
CELERY_BEAT_SCHEDULE["users.retry_offboardings"] = {
    "task": "users.retry_offboardings",
    "schedule": 60.0,
}

# --- Security baseline (clusters.baseline) ----------------------------------------------------
BASELINE_CHECK_HOURS = env_int("BASELINE_CHECK_HOURS", 24, minimum=1)
BASELINE_KEEP_DAYS = env_int("BASELINE_KEEP_DAYS", 90, minimum=1)
# OS users whose ~/.mysql_history the baseline leaves alone (comma-separated user names).
BASELINE_HISTORY_IGNORE_USERS = env_list("BASELINE_HISTORY_IGNORE_USERS")
CELERY_BEAT_SCHEDULE["clusters.baseline_check_all"] = {
    "task": "clusters.baseline_check_all",
    "schedule": float(BASELINE_CHECK_HOURS * 3600),
}

# High availability (clusters.ha.fence.reconcile): how often the console looks for failovers
# pgpool-II made by itself and enforces the fences of former primaries.
CLUSTERS_HA_RECONCILE_SECONDS = env_int("CLUSTERS_HA_RECONCILE_SECONDS", 10, minimum=1)
CELERY_BEAT_SCHEDULE["clusters.ha_reconcile"] = {
    "task": "clusters.ha_reconcile",
    "schedule": float(CLUSTERS_HA_RECONCILE_SECONDS),
}

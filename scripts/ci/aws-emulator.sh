# Sourced by deploy-moto-test.sh and check-runbook-aws-commands.sh: the pinned moto and aws CLI
# versions, their installation, and an AWS environment isolated in $WORK that talks only to a
# moto_server on loopback (dummy credentials, no profile, no instance metadata).

MOTO_VERSION="5.2.1"
AWSCLI_VERSION="1.45.11"

pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }

# pip's script folder on PATH, where `aws` lands.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" || return 2
case ":$PATH:" in *":$PY_SCRIPTS:"*) ;; *) PATH="$PATH:$PY_SCRIPTS" ;; esac
export PATH

install_moto() {
  python3 -c 'import moto, moto.server, flask, flask_cors' 2>/dev/null && return 0
  echo "# installing moto[server]==$MOTO_VERSION"
  pip_install "moto[server]==$MOTO_VERSION"
}

install_awscli() {
  command -v aws >/dev/null 2>&1 && return 0
  echo "# installing awscli==$AWSCLI_VERSION"
  pip_install "awscli==$AWSCLI_VERSION" && hash -r
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() { # wait_http URL SECONDS: 0 once URL answers (any HTTP status)
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request, urllib.error
url, limit = sys.argv[1], float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        urllib.request.urlopen(url, timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY
}

isolate_aws_env() {
  unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
  : >"$WORK/aws-config"
  : >"$WORK/aws-credentials"
  export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export AWS_DEFAULT_REGION=ap-northeast-1 AWS_REGION=ap-northeast-1 AWS_EC2_METADATA_DISABLED=true
}

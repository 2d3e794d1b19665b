//! The commands behind the CLI. Each prints exactly one JSON object on stdout on success; errors
//! are written to stderr and the process exits with status 1 (2 for bad arguments).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use policies::password::PasswordContext;
use policies::user_id::UserId;
use policies::{InstitutionCode, Violation};
use serde_json::{Value, json};
use service::provisioning::{Actor, NewClientInput, NewInstitutionInput};
use service::{ServiceError, SystemClock};

use crate::cli::{
    CheckPassword, CheckUserId, Cli, ClientCommand, Command, InstitutionCommand, KeysCommand,
    OperatorCommand, PolicyCommand,
};
use crate::config::Settings;
use crate::idle_poll::IdlePoll;
use crate::{Application, Services};

pub fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), 1),
    };
    crate::telemetry::init(&settings.log);
    if let Command::Policy(cmd) = cli.command {
        // Pure checks: no database, no runtime.
        return match policy(&settings, cmd) {
            Ok(v) => print(&v),
            Err(e) => fail(&e, 2),
        };
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // Only the server keeps a runtime busy long enough for idle polling to matter.
    let idle_poll = match cli.command {
        Command::Serve => Duration::from_micros(settings.server.idle_poll_microseconds.into()),
        _ => Duration::ZERO,
    };
    let runtime = match IdlePoll::attach(&mut builder, idle_poll) {
        Ok((runtime, Ok(_))) => runtime,
        Ok((runtime, Err(why))) => {
            if !idle_poll.is_zero() {
                tracing::warn!(reason = %why, "idle polling is off");
            }
            runtime
        }
        Err(e) => return fail(&format!("cannot start the runtime: {e}"), 1),
    };
    match runtime.block_on(dispatch(settings, cli.command)) {
        Ok(Some(v)) => print(&v),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => fail(&describe(&e), 1),
    }
}

async fn dispatch(settings: Settings, command: Command) -> anyhow::Result<Option<Value>> {
    let clock = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            let app = Application::build(settings, clock).await?;
            if let Some(op) = &app.bootstrap {
                // Shown once: the password is never stored in clear and never logged.
                print(&json!({
                    "bootstrap_operator": { "institution_code": policies::institution::PLATFORM_CODE, "user_id": op.user_id, "initial_password": op.initial_password }
                }));
            }
            app.run_until(shutdown_signal()).await?;
            Ok(None)
        }
        Command::Migrate => {
            let services = Services::open(settings, clock).await?;
            Ok(Some(
                json!({ "migrated": true, "database": services.store.backend() }),
            ))
        }
        Command::Operator(OperatorCommand::Create(args)) => {
            let services = Services::open(settings, clock).await?;
            let issued = services
                .provisioner
                .create_operator(&Actor::cli(), &args.user_id, &args.name, &args.name_kana)
                .await?;
            Ok(Some(
                json!({ "user_id": issued.user_id, "initial_password": issued.initial_password }),
            ))
        }
        Command::Institution(InstitutionCommand::Create(args)) => {
            let usage_start = args
                .usage_start
                .as_deref()
                .map(parse_date)
                .transpose()
                .context("--usage-start must be a date like 2026-04-01")?;
            let services = Services::open(settings, clock).await?;
            let created = services
                .provisioner
                .create_institution(
                    &Actor::cli(),
                    NewInstitutionInput {
                        code: &args.code,
                        name: &args.name,
                        master_id: &args.master_id,
                        master_reset_id: &args.master_reset_id,
                        usage_start,
                    },
                )
                .await?;
            Ok(Some(json!({
                "code": created.institution.code.as_str(),
                "master": created.master,
                "master_reset": created.master_reset,
            })))
        }
        Command::Client(ClientCommand::Create(args)) => {
            let services = Services::open(settings, clock).await?;
            let input = NewClientInput {
                client_id: args.client_id,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                public: args.public,
                scopes: args.scope.split_whitespace().map(str::to_owned).collect(),
                grant_types: args.grant_types,
                backchannel_logout_uri: args.backchannel_logout_uri,
                signing_alg: args.signing_alg,
            };
            let (client, secret) = services
                .provisioner
                .create_client(&Actor::cli(), input)
                .await?;
            let mut out = json!({ "client_id": client.client_id });
            if let Some(secret) = secret {
                out["client_secret"] = Value::String(secret);
            }
            Ok(Some(out))
        }
        Command::Keys(KeysCommand::Rotate(args)) => {
            let algs = args
                .algs
                .iter()
                .map(|a| {
                    crate::keys::ALGORITHMS
                        .into_iter()
                        .find(|known| known == a)
                        .with_context(|| format!("--alg {a:?}: expected RS256, ES256 or EdDSA"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let algs = if algs.is_empty() {
                crate::keys::ALGORITHMS.to_vec()
            } else {
                algs
            };
            let services = Services::open(settings, clock).await?;
            let rotated = crate::keys::rotate(
                services.store.as_ref(),
                &services.sealer,
                services.clock.as_ref(),
                &algs,
            )
            .await?;
            Ok(Some(
                json!({ "rotated": rotated, "overlap_seconds": services.settings.key_overlap().whole_seconds() }),
            ))
        }
        Command::Policy(_) => unreachable!("handled before the runtime starts"),
    }
}

fn policy(settings: &Settings, command: PolicyCommand) -> Result<Value, String> {
    match command {
        PolicyCommand::CheckPassword(args) => check_password(settings, args),
        PolicyCommand::CheckUserId(args) => Ok(check_user_id(args)),
    }
}

fn check_password(settings: &Settings, args: CheckPassword) -> Result<Value, String> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let text = String::from_utf8(input).map_err(|_| "stdin is not valid UTF-8".to_owned())?;
    let mut lines = text.lines();
    let password = lines
        .next()
        .ok_or("expected the password on stdin (one line)")?;
    let current = if args.current {
        Some(
            lines
                .next()
                .ok_or("--current expects the current password on a second line")?,
        )
    } else {
        None
    };
    let ctx = PasswordContext {
        user_id: args.user_id.as_deref(),
        current_password: current,
    };
    Ok(verdict(settings.password.check(password, &ctx)))
}

fn check_user_id(args: CheckUserId) -> Value {
    match InstitutionCode::parse_for_login(&args.institution_code) {
        Ok(code) => verdict(
            UserId::parse(&args.user_id, args.account_type, code.kind())
                .err()
                .unwrap_or_default(),
        ),
        Err(v) => verdict(vec![v]),
    }
}

fn verdict(violations: Vec<Violation>) -> Value {
    json!({ "ok": violations.is_empty(), "violations": violations })
}

fn parse_date(raw: &str) -> anyhow::Result<time::Date> {
    Ok(time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )?)
}

fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ServiceError>() {
        Some(ServiceError::Invalid { field, violations }) => {
            let lines: Vec<String> = violations
                .iter()
                .map(|v| format!("  - [{}] {} / {}", v.rule, v.message_en, v.message_ja))
                .collect();
            format!("invalid {field}:\n{}", lines.join("\n"))
        }
        Some(ServiceError::Conflict(what)) => {
            format!("{what} already exists (user IDs stay reserved after deletion)")
        }
        _ => format!("{e:#}"),
    }
}

fn print(value: &Value) -> ExitCode {
    println!("{value}");
    ExitCode::SUCCESS
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

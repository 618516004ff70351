//! `sepia e2e`: starts the gateway with a configuration and runs a folder of
//! specs in KrakenD's end-to-end format against it, as KrakenD Enterprise's
//! `krakend e2e` does (KrakenD CE's integration suite is in this format), so
//! a team keeps its test folders. The specs are read and checked before the
//! gateway starts; each is sent once, in file-name order, and the report
//! names every difference.

pub mod client;
pub mod compare;
pub mod spec;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    startup::{self, RunOptions, StartupError},
    upstream::{
        backend_client::BackendClient,
        tls::{TlsError, TlsSettings},
    },
};

/// What `sepia e2e` runs.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    /// The gateway, as `sepia run` would serve it.
    pub run: RunOptions,
    /// The folder of spec files.
    pub specs: PathBuf,
    /// A wait between the gateway listening and the first spec, for
    /// backends that start beside it.
    pub delay: Duration,
    /// How long each exchange of a spec may take.
    pub request_timeout: Duration,
    /// PEM files of roots to trust beside the system's, for specs that
    /// call an HTTPS gateway with a private certificate.
    pub ca_certs: Vec<PathBuf>,
}

/// Why the specs could not be run (a failing spec is not an error: it is
/// in the report).
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A spec file is unusable.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// A `--ca-certs` file cannot be read.
    #[error("--ca-certs {}: cannot read it: {source}", .path.display())]
    CaCerts {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The client's TLS cannot be set up.
    #[error("cannot set up the specs' TLS client: {0}")]
    Tls(#[from] TlsError),
    /// The gateway did not start (or stopped before the specs ran).
    #[error("the gateway did not start: {0}")]
    Gateway(#[source] StartupError),
    /// The gateway's task failed.
    #[error("the gateway stopped unexpectedly: {0}")]
    Task(String),
}

/// The outcome of one spec.
#[derive(Debug)]
pub struct Outcome {
    /// The spec's name (its file name without `.json`).
    pub name: String,
    /// What differs from what it expects; empty when it passed.
    pub problems: Vec<String>,
}

/// Every spec's outcome, in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// How many specs failed.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| !o.problems.is_empty())
            .count()
    }

    /// The report as printed: a line a spec, its differences indented under
    /// it, and the counts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for outcome in &self.outcomes {
            let verdict = if outcome.problems.is_empty() {
                "ok  "
            } else {
                "FAIL"
            };
            out.push_str(&format!("{verdict}  {}\n", outcome.name));
            for problem in &outcome.problems {
                out.push_str(&format!("        {problem}\n"));
            }
        }
        let failed = self.failed();
        out.push_str(&format!(
            "{} specs: {} passed, {failed} failed\n",
            self.outcomes.len(),
            self.outcomes.len() - failed
        ));
        out
    }
}

/// Reads the specs, starts the gateway, runs each spec, stops the gateway.
pub async fn run(options: E2eOptions) -> Result<Report, E2eError> {
    let (specs, warnings) = spec::load_folder(&options.specs)?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let client = spec_client(&options.ca_certs)?;
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            _ = stop_rx => {}
            () = crate::server::shutdown_signal() => {}
        }
    };
    let mut gateway = tokio::spawn(startup::serve_until(options.run, stop, Some(listening_tx)));
    tokio::select! {
        address = listening_rx => {
            if let Ok(address) = address {
                tracing::info!(%address, specs = specs.len(), "running the specs");
            }
        }
        ended = &mut gateway => {
            return Err(match ended {
                Ok(Err(error)) => E2eError::Gateway(error),
                Ok(Ok(())) => E2eError::Task("it stopped before listening".into()),
                Err(error) => E2eError::Task(error.to_string()),
            });
        }
    }
    tokio::time::sleep(options.delay).await;
    let mut report = Report::default();
    for spec in &specs {
        let problems = match client::send(&client, &spec.request, options.request_timeout).await {
            Ok(received) => compare::differences(&received, &spec.expected),
            Err(error) => vec![error],
        };
        report.outcomes.push(Outcome {
            name: spec.name.clone(),
            problems,
        });
    }
    let _ = stop_tx.send(());
    match gateway.await {
        Ok(Ok(())) => Ok(report),
        Ok(Err(error)) => Err(E2eError::Gateway(error)),
        Err(error) => Err(E2eError::Task(error.to_string())),
    }
}

/// The client the specs are sent with: the system's roots and `ca_certs`.
fn spec_client(ca_certs: &[PathBuf]) -> Result<BackendClient, E2eError> {
    let mut tls = TlsSettings::default();
    for path in ca_certs {
        let pem = std::fs::read(path).map_err(|source| E2eError::CaCerts {
            path: path.clone(),
            source,
        })?;
        tls.extra_roots_pem.extend(pem);
        tls.extra_roots_pem.push(b'\n');
    }
    Ok(BackendClient::new(&tls)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_spec_and_counts() {
        let report = Report {
            outcomes: vec![
                Outcome {
                    name: "a".into(),
                    problems: vec![],
                },
                Outcome {
                    name: "b".into(),
                    problems: vec!["status 500 where 200 is expected".into()],
                },
            ],
        };
        assert_eq!(report.failed(), 1);
        assert_eq!(
            report.render(),
            "ok    a\nFAIL  b\n        status 500 where 200 is expected\n2 specs: 1 passed, 1 failed\n"
        );
    }
}

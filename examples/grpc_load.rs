//! A load generator for `UserService.GetUser` over gRPC, run as its own
//! process by `scripts/bench_deployed.py` (wrk has no gRPC): one HTTP/2
//! connection per concurrent caller, as wrk opens one per connection.
//!
//! `grpc_load <url> <seconds> <connections> <tokens-file>`, where every line of
//! the tokens file is `<access token> <user id>`; the callers take the lines
//! in turn. Prints one JSON object: requests, errors, req/s, p50/p99 in ms.

use std::time::{Duration, Instant};
use suite_proto::user::{GetUserRequest, user_service_client::UserServiceClient};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, seconds, connections, tokens] = args.as_slice() else {
        return Err("usage: grpc_load <url> <seconds> <connections> <tokens-file>".into());
    };
    let window = Duration::from_secs(seconds.parse()?);
    let connections: usize = connections.parse()?;
    let callers: Vec<(String, String)> = std::fs::read_to_string(tokens)?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, id)| (format!("Bearer {t}"), id.to_owned()))
        .collect();
    if callers.is_empty() {
        return Err(format!("{tokens}: no `<token> <user id>` lines").into());
    }

    let deadline = Instant::now() + window;
    let mut tasks = Vec::with_capacity(connections);
    for n in 0..connections {
        let channel = tonic::transport::Channel::from_shared(url.clone())?
            .connect()
            .await?;
        let mut client = UserServiceClient::new(channel);
        let callers = callers.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut turn = n;
            while Instant::now() < deadline {
                let (token, id) = &callers[turn % callers.len()];
                turn += 1;
                let mut req = tonic::Request::new(GetUserRequest { id: id.clone() });
                if let Ok(v) = token.parse() {
                    req.metadata_mut().insert("authorization", v);
                }
                let start = Instant::now();
                match client.get_user(req).await {
                    Ok(_) => latencies.push(start.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"rps\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}}}",
        latencies.len(),
        latencies.len() as f64 / window.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}

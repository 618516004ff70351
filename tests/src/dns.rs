//! A DNS server on loopback that answers SRV queries from a table the test
//! changes while the gateway runs; every other name is NXDOMAIN.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{rdata::SRV, Name, RData, Record, RecordType},
};
use tokio::net::UdpSocket;

/// One SRV record: priority, weight, port, target.
pub type Srv = (u16, u16, u16, &'static str);

/// The running server; stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<Srv>>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    pub async fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a UDP port");
        let addr = socket.local_addr().expect("its address");
        let records: Arc<Mutex<HashMap<String, Vec<Srv>>>> = Arc::default();
        let table = records.clone();
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fails = failing.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                let mut reply = answer(&query, &table.lock().expect("table"));
                if fails.load(std::sync::atomic::Ordering::Relaxed) {
                    reply.answers.clear();
                    reply.metadata.response_code = ResponseCode::ServFail;
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        TestDns {
            addr,
            records,
            failing,
            task,
        }
    }

    /// Answers every query with SERVFAIL (or, with false, normally again).
    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the records of `name` (a fully qualified name, `_api._tcp.test.`).
    pub fn set(&self, name: &str, records: &[Srv]) {
        self.records
            .lock()
            .expect("table")
            .insert(name.to_ascii_lowercase(), records.to_vec());
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, table: &HashMap<String, Vec<Srv>>) -> Message {
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.queries = query.queries.clone();
    let Some(question) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    let name = question.name().to_string().to_ascii_lowercase();
    match table.get(&name) {
        Some(records) if question.query_type() == RecordType::SRV => {
            for (priority, weight, port, target) in records {
                let target = Name::from_ascii(target).expect("a target name");
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    1,
                    RData::SRV(SRV::new(*priority, *weight, *port, target)),
                ));
            }
        }
        Some(_) => {}
        None => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply
}

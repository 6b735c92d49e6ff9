//! The part of containerd's gRPC API (v1, served by containerd 1.6 through 2.x) the
//! watcher reads, and a client for it over containerd's Unix socket.
//!
//! The messages are declared here with prost's derive, holding only the fields the watcher
//! reads (protobuf decoders skip the rest). Field numbers are those of containerd's
//! `api/services/{namespaces,containers,tasks,images,events}/v1/*.proto` and
//! `api/types/{task/task,event,descriptor}.proto`. `containerd-client` would bring the same
//! through a build script that runs `protoc` on 30 files, none of which we need beyond
//! these: a C++ tool on every build machine for five calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNamespacesRequest {
    #[prost(string, tag = "1")]
    pub filter: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Namespace {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNamespacesResponse {
    #[prost(message, repeated, tag = "1")]
    pub namespaces: Vec<Namespace>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub labels: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub image: String,
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksRequest {
    #[prost(string, tag = "1")]
    pub filter: String,
}

/// `containerd.v1.types.Status`.
pub mod task_status {
    pub const RUNNING: i32 = 2;
    pub const PAUSED: i32 = 4;
    pub const PAUSING: i32 = 5;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    #[prost(int32, tag = "4")]
    pub status: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksResponse {
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<Process>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetImageRequest {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Descriptor {
    #[prost(string, tag = "1")]
    pub media_type: String,
    #[prost(string, tag = "2")]
    pub digest: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "3")]
    pub target: Option<Descriptor>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetImageResponse {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub topic: String,
}

/// Longest answer accepted from containerd (a node's container list is a few MiB at most).
const MAX_MESSAGE: usize = 64 << 20;
/// How long one unary call may take before the watcher gives up on it and reconnects
/// (applied by the caller, not on the channel, where it would also bound the event
/// subscription).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to containerd's socket.
#[derive(Clone)]
pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

/// The gRPC error, or the socket's.
pub type ApiError = Box<dyn std::error::Error + Send + Sync>;

impl Client {
    /// Connects to the Unix socket at `socket` (the URI is a placeholder the connector
    /// ignores).
    pub async fn connect(socket: &Path) -> Result<Self, ApiError> {
        let path: PathBuf = socket.to_path_buf();
        let channel = Endpoint::from_static("http://containerd.sock")
            .connect_timeout(CALL_TIMEOUT)
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await?;
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Client { grpc })
    }

    async fn unary<Req, Resp>(
        &mut self,
        path: &'static str,
        namespace: Option<&str>,
        req: Req,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc.ready().await?;
        let mut request = tonic::Request::new(req);
        if let Some(ns) = namespace {
            request
                .metadata_mut()
                .insert("containerd-namespace", ns.parse()?);
        }
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let resp = self
            .grpc
            .unary(request, PathAndQuery::from_static(path), codec)
            .await?;
        Ok(resp.into_inner())
    }

    pub async fn namespaces(&mut self) -> Result<Vec<String>, ApiError> {
        let r: ListNamespacesResponse = self
            .unary(
                "/containerd.services.namespaces.v1.Namespaces/List",
                None,
                ListNamespacesRequest::default(),
            )
            .await?;
        Ok(r.namespaces.into_iter().map(|n| n.name).collect())
    }

    pub async fn containers(&mut self, ns: &str) -> Result<Vec<Container>, ApiError> {
        let r: ListContainersResponse = self
            .unary(
                "/containerd.services.containers.v1.Containers/List",
                Some(ns),
                ListContainersRequest::default(),
            )
            .await?;
        Ok(r.containers)
    }

    pub async fn tasks(&mut self, ns: &str) -> Result<Vec<Process>, ApiError> {
        let r: ListTasksResponse = self
            .unary(
                "/containerd.services.tasks.v1.Tasks/List",
                Some(ns),
                ListTasksRequest::default(),
            )
            .await?;
        Ok(r.tasks)
    }

    /// The image's manifest digest (`sha256:...`), when containerd has the image.
    pub async fn image_digest(&mut self, ns: &str, name: &str) -> Result<Option<String>, ApiError> {
        let r: Result<GetImageResponse, ApiError> = self
            .unary(
                "/containerd.services.images.v1.Images/Get",
                Some(ns),
                GetImageRequest {
                    name: name.to_string(),
                },
            )
            .await;
        match r {
            Ok(r) => Ok(r
                .image
                .and_then(|i| i.target)
                .map(|t| t.digest)
                .filter(|d| !d.is_empty())),
            Err(e)
                if e.downcast_ref::<tonic::Status>()
                    .is_some_and(|s| s.code() == tonic::Code::NotFound) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The event stream of every namespace (task and container topics).
    pub async fn subscribe(&mut self) -> Result<tonic::Streaming<Envelope>, ApiError> {
        self.grpc.ready().await?;
        let request = tonic::Request::new(SubscribeRequest {
            filters: vec![
                r#"topic~="^/tasks/""#.to_string(),
                r#"topic~="^/containers/""#.to_string(),
            ],
        });
        let codec = tonic_prost::ProstCodec::<SubscribeRequest, Envelope>::default();
        let resp = self
            .grpc
            .server_streaming(
                request,
                PathAndQuery::from_static("/containerd.services.events.v1.Events/Subscribe"),
                codec,
            )
            .await?;
        Ok(resp.into_inner())
    }
}

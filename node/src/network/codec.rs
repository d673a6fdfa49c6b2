//! The request-response codec of every Qubix protocol: a u32 big-endian length prefix, then
//! the message in the wire codec. The length is checked against the message type's maximum
//! before a byte of the body is read, so a peer cannot make us buffer more than that.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use qubix_protocol::codec::{self, WireMessage};

/// A [`request_response::Codec`] for one request and one response type.
pub(crate) struct WireCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for WireCodec<Req, Resp> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req, Resp> Clone for WireCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

async fn read_frame<M: WireMessage, T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<M> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > M::MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} frame of {len} bytes exceeds the limit of {}",
                M::TAG,
                M::MAX_SIZE
            ),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    codec::decode(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode_frame<M: WireMessage>(msg: &M) -> io::Result<Vec<u8>> {
    codec::encode(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: io::Result<Vec<u8>>,
) -> io::Result<()> {
    let bytes = bytes?;
    let len =
        u32::try_from(bytes.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Req, Resp> request_response::Codec for WireCodec<Req, Resp>
where
    Req: WireMessage + Send + 'static,
    Resp: WireMessage + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Req> {
        read_frame(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Resp> {
        read_frame(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Req,
    ) -> io::Result<()> {
        write_frame(io, encode_frame(&req)).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()> {
        write_frame(io, encode_frame(&res)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubix_protocol::market::{OfferSyncRequest, OfferSyncResponse};
    use request_response::Codec as _;

    type SyncCodec = WireCodec<OfferSyncRequest, OfferSyncResponse>;

    #[tokio::test]
    async fn frames_round_trip() {
        let proto = StreamProtocol::new("/t/1");
        let mut buf = futures::io::Cursor::new(Vec::new());
        let req = OfferSyncRequest {
            after: None,
            limit: 7,
        };
        SyncCodec::default()
            .write_request(&proto, &mut buf, req.clone())
            .await
            .unwrap();
        buf.set_position(0);
        let got = SyncCodec::default()
            .read_request(&proto, &mut buf)
            .await
            .unwrap();
        assert_eq!(got, req);
    }

    #[tokio::test]
    async fn oversize_length_prefix_is_refused_before_reading() {
        let proto = StreamProtocol::new("/t/1");
        let mut bytes = u32::MAX.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let mut buf = futures::io::Cursor::new(bytes);
        let err = SyncCodec::default()
            .read_request(&proto, &mut buf)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }
}

//! An in-memory disk for redb that behaves like a real one under crashes:
//! writes land in a volatile image, `sync_data` makes the image durable, and
//! [`MemoryDisk::crash`] throws away everything written since the last sync.
//! The deterministic simulation runs the real ledger (and the node's chain
//! store) on it, so a simulated crash at any point is a real recovery test.
//!
//! It can also be told to fail writes ([`MemoryDisk::set_failing`]), like a
//! full disk.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

#[derive(Debug, Default)]
struct Images {
    volatile: Vec<u8>,
    durable: Vec<u8>,
}

/// A simulated disk; clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemoryDisk {
    images: Arc<Mutex<Images>>,
    failing: Arc<AtomicBool>,
}

impl MemoryDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// A redb backend on this disk (one per open database).
    pub fn backend(&self) -> MemoryBackend {
        MemoryBackend { disk: self.clone() }
    }

    /// Loses everything not yet synced. The database using this disk must
    /// be dropped and reopened (as after a real crash).
    pub fn crash(&self) {
        let mut images = self.images.lock().expect("disk lock");
        images.volatile = images.durable.clone();
    }

    /// While set, every write, resize and sync fails with an I/O error.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("simulated disk failure"));
        }
        Ok(())
    }
}

/// [`redb::StorageBackend`] on a [`MemoryDisk`].
#[derive(Debug)]
pub struct MemoryBackend {
    disk: MemoryDisk,
}

impl redb::StorageBackend for MemoryBackend {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.disk.images.lock().expect("disk lock").volatile.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let images = self.disk.images.lock().expect("disk lock");
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let end = start
            .checked_add(out.len())
            .filter(|e| *e <= images.volatile.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(&images.volatile[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.disk.check()?;
        let len = usize::try_from(len).map_err(std::io::Error::other)?;
        self.disk
            .images
            .lock()
            .expect("disk lock")
            .volatile
            .resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.disk.check()?;
        let mut images = self.disk.images.lock().expect("disk lock");
        images.durable = images.volatile.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.disk.check()?;
        let mut images = self.disk.images.lock().expect("disk lock");
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let end = start
            .checked_add(data.len())
            .ok_or_else(|| std::io::Error::other("write past the end of the addressable disk"))?;
        if images.volatile.len() < end {
            images.volatile.resize(end, 0);
        }
        images.volatile[start..end].copy_from_slice(data);
        Ok(())
    }
}

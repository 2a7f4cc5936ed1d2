//! What the kernels run on: one persistent thread pool, and memory for weights in huge-page
//! runs.

pub mod arena;
pub mod pool;

/// An output buffer the pool's threads fill in disjoint parts.
pub struct SharedOut<T = f32>(pub *mut T);

impl<T> SharedOut<T> {
    /// The element at `offset` (within the buffer: the caller's to keep).
    pub fn at(&self, offset: usize) -> *mut T {
        // SAFETY (for callers): offset is within the buffer.
        self.0.wrapping_add(offset)
    }
}

// SAFETY: each thread writes a disjoint range (see `each_row`, and every other user).
unsafe impl<T: Send> Sync for SharedOut<T> {}

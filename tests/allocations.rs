//! "No allocation in the step" (the tuned engine's decode): with every thread's heap calls
//! counted by this binary's global allocator, a decode step after the first few (which size
//! the buffers, and after `reserve` sized the KV cache) makes none, on any thread of the
//! engine's pool. One test in this binary, so no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is handed to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn tuned_decode_steps_allocate_nothing() {
    let path = llm_bench::defaults::default_gguf_path();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model first (scripts/test does)",
        path.display()
    );
    llm_bench::system::configure_threads(None);
    // The stored q4_1 (repacked 8-row groups) and q8_0; dense f32 rows; one sequence and two.
    for (format, batch) in [(None, 1), (Some("q8_0"), 1), (Some("f32"), 1), (None, 2)] {
        let format: Option<llm_bench::WeightFormat> = format.map(|f| f.parse().unwrap());
        let mut model = llm_bench::model::plan(&llm_bench::ModelSpec::Gguf(path.clone()), format)
            .unwrap()
            .load_with("tuned".parse().unwrap())
            .unwrap();
        let prompt = model.tokenizer.encode("The capital of France is").unwrap();
        let (warm, counted) = (3, 16);
        model
            .engine
            .reserve(batch, prompt.len() + warm + counted)
            .unwrap();
        model.engine.prefill(&vec![prompt; batch]).unwrap();
        let tokens = vec![1u32; batch];
        for _ in 0..warm {
            model.engine.decode(&tokens).unwrap();
        }
        let before = CALLS.load(Ordering::SeqCst);
        let mut finite = true;
        for _ in 0..counted {
            let logits = model.engine.decode(&tokens).unwrap();
            finite &= logits.data.iter().all(|v| v.is_finite());
        }
        let calls = CALLS.load(Ordering::SeqCst) - before;
        assert!(finite, "{format:?} batch {batch}: logits not finite");
        assert_eq!(
            calls, 0,
            "{format:?} batch {batch}: {counted} decode steps made {calls} heap allocations"
        );
    }
}

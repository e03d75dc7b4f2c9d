// The caching device allocator, in the style of PyTorch's: cudaMalloc/cudaFree are slow
// and synchronise the device, so freed blocks are kept and reused.
//
// - Sizes round up to 512 bytes.  Requests up to 1 MiB ("small") are carved from 2 MiB
//   segments; larger ones from 20 MiB segments, or a segment of their own rounded to
//   2 MiB above 10 MiB.
// - A free block bigger than a request is split; the rest stays free.  Freed neighbours
//   within a segment merge back, so a segment can become one block again and be returned
//   by empty_cache().
// - Stream-aware reuse: a block belongs to the stream it was allocated on, and a freed
//   block is reused only by allocations on that stream, whose later kernels are ordered
//   after every earlier use.  A block that was also used on other streams
//   (block_record_stream) waits on events recorded in those streams before it is reused.
// - Out of memory: the cached free segments are released and cudaMalloc tried again; then
//   OutOfMemory with the figures.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include "common.cuh"

namespace tfc {

constexpr size_t kMinBlock = 512;
constexpr size_t kSmallSize = 1 << 20;
constexpr size_t kSmallSegment = 2 << 20;
constexpr size_t kLargeSegment = 20 << 20;
constexpr size_t kMinLargeAlloc = 10 << 20;
constexpr size_t kRoundLarge = 2 << 20;

struct Block {
    int device;
    cudaStream_t stream;
    size_t size;
    char* ptr;
    bool small;
    bool allocated = false;
    int pending = 0;             // events still to complete before reuse
    Block* prev = nullptr;       // neighbours in the segment (address order)
    Block* next = nullptr;
    std::vector<cudaStream_t> uses;  // other streams that used it
};

struct BlockLess {  // pool order: stream, then size, then address
    bool operator()(const Block* a, const Block* b) const {
        if (a->stream != b->stream) return reinterpret_cast<uintptr_t>(a->stream) < reinterpret_cast<uintptr_t>(b->stream);
        if (a->size != b->size) return a->size < b->size;
        return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
    }
};

struct DeviceGuard {
    int prev = -1;
    explicit DeviceGuard(int d) {
        cudaGetDevice(&prev);
        if (prev != d) cudaSetDevice(d);
    }
    ~DeviceGuard() {
        int now = -1;
        cudaGetDevice(&now);
        if (prev >= 0 && now != prev) cudaSetDevice(prev);
    }
};

class DeviceAllocator {
  public:
    explicit DeviceAllocator(int device) : device_(device) {}

    Block* malloc(size_t request, cudaStream_t stream) {
        std::lock_guard<std::mutex> lock(mu_);
        process_events();
        size_t size = request < kMinBlock ? kMinBlock : (request + kMinBlock - 1) / kMinBlock * kMinBlock;
        bool small = size <= kSmallSize;
        auto& pool = small ? small_ : large_;
        Block key{device_, stream, size, nullptr, small};
        auto it = pool.lower_bound(&key);
        Block* b = nullptr;
        if (it != pool.end() && (*it)->stream == stream) {
            b = *it;
            pool.erase(it);
        } else {
            b = new_segment(size, small, stream);
        }
        size_t rest = b->size - size;
        if (small ? rest >= kMinBlock : rest > kSmallSize) {  // split: the tail stays free
            Block* r = new Block{device_, stream, rest, b->ptr + size, small};
            r->prev = b;
            r->next = b->next;
            if (b->next) b->next->prev = r;
            b->next = r;
            b->size = size;
            pool.insert(r);
            stats_.n_split++;
        }
        b->allocated = true;
        stats_.allocated += b->size;
        stats_.max_allocated = std::max(stats_.max_allocated, stats_.allocated);
        stats_.n_alloc++;
        return b;
    }

    void free(Block* b) {
        std::lock_guard<std::mutex> lock(mu_);
        b->allocated = false;
        stats_.allocated -= b->size;
        if (!b->uses.empty()) {
            DeviceGuard g(device_);
            for (cudaStream_t s : b->uses) {
                cudaEvent_t e;
                if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess ||
                    cudaEventRecord(e, s) != cudaSuccess) {
                    cudaGetLastError();
                    cudaStreamSynchronize(s);  // cannot record: wait now instead
                    continue;
                }
                pending_.push_back({e, b});
                b->pending++;
            }
            b->uses.clear();
            if (b->pending) return;
        }
        release(b);
    }

    void record_stream(Block* b, cudaStream_t s) {
        std::lock_guard<std::mutex> lock(mu_);
        if (s == b->stream) return;
        if (std::find(b->uses.begin(), b->uses.end(), s) == b->uses.end()) b->uses.push_back(s);
    }

    AllocStats stats() {
        std::lock_guard<std::mutex> lock(mu_);
        AllocStats s = stats_;
        s.n_free_blocks = static_cast<int64_t>(small_.size() + large_.size());
        return s;
    }
    void reset_peak() {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.max_allocated = stats_.allocated;
        stats_.max_reserved = stats_.reserved;
    }
    void empty_cache() {
        std::lock_guard<std::mutex> lock(mu_);
        process_events();
        release_cached();
    }
    std::string snapshot() {
        std::lock_guard<std::mutex> lock(mu_);
        std::ostringstream os;
        for (Block* head : segments_) {
            size_t total = 0;
            for (Block* b = head; b; b = b->next) total += b->size;
            os << "segment " << static_cast<void*>(head->ptr) << " " << total << " "
               << (head->small ? "small" : "large") << " stream " << head->stream << "\n";
            for (Block* b = head; b; b = b->next)
                os << "  block " << static_cast<void*>(b->ptr) << " " << b->size << " "
                   << (b->allocated ? "in use" : b->pending ? "pending" : "free") << "\n";
        }
        return os.str();
    }

  private:
    Block* new_segment(size_t size, bool small, cudaStream_t stream) {
        size_t seg = small ? kSmallSegment
                           : size < kMinLargeAlloc ? kLargeSegment
                                                   : (size + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
        DeviceGuard g(device_);
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, seg);
        if (e != cudaSuccess) {
            cudaGetLastError();
            release_cached();  // give the cached segments back, then try once more
            e = cudaMalloc(&p, seg);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            stats_.n_ooms++;
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            cudaGetLastError();
            std::ostringstream os;
            os << "CUDA out of memory on device " << device_ << ": tried to allocate " << size
               << " bytes (a segment of " << seg << "); " << stats_.allocated
               << " bytes in use by tensors, " << stats_.reserved << " reserved by tinyfw, "
               << free_b << " free of " << total_b << " on the device";
            throw OutOfMemory(os.str());
        }
        stats_.reserved += seg;
        stats_.max_reserved = std::max(stats_.max_reserved, stats_.reserved);
        stats_.n_cuda_malloc++;
        Block* b = new Block{device_, stream, seg, static_cast<char*>(p), small};
        segments_.insert(b);
        return b;
    }

    // a freed block (no pending events) merges with free neighbours and joins its pool
    void release(Block* b) {
        auto& pool = b->small ? small_ : large_;
        for (Block* n : {b->prev, b->next}) {
            if (!n || n->allocated || n->pending) continue;
            pool.erase(n);
            if (n == b->prev) {
                n->size += b->size;
                n->next = b->next;
                if (b->next) b->next->prev = n;
                if (segments_.erase(b)) segments_.insert(n);
                delete b;
                b = n;
            } else {
                b->size += n->size;
                b->next = n->next;
                if (n->next) n->next->prev = b;
                delete n;
            }
        }
        pool.insert(b);
    }

    void process_events() {
        while (!pending_.empty()) {
            auto [e, b] = pending_.front();
            cudaError_t r = cudaEventQuery(e);
            if (r == cudaErrorNotReady) break;  // recorded in order: later ones wait too
            cudaGetLastError();
            cudaEventDestroy(e);
            pending_.pop_front();
            if (--b->pending == 0) release(b);
        }
    }

    // cudaFree every whole segment that is free (cudaFree waits for the device)
    void release_cached() {
        DeviceGuard g(device_);
        for (auto* pool : {&small_, &large_}) {
            for (auto it = pool->begin(); it != pool->end();) {
                Block* b = *it;
                if (!b->prev && !b->next) {
                    cudaFree(b->ptr);
                    stats_.reserved -= b->size;
                    segments_.erase(b);
                    delete b;
                    it = pool->erase(it);
                } else {
                    ++it;
                }
            }
        }
        cudaGetLastError();
    }

    int device_;
    std::mutex mu_;
    std::set<Block*, BlockLess> small_, large_;
    std::set<Block*> segments_;  // the first block of each segment
    std::deque<std::pair<cudaEvent_t, Block*>> pending_;
    AllocStats stats_;
};

static std::mutex g_mu;
static std::vector<std::unique_ptr<DeviceAllocator>>& allocators() {
    static auto* v = new std::vector<std::unique_ptr<DeviceAllocator>>();  // never destroyed:
    return *v;  // tensors freed at interpreter exit must still find it
}
static DeviceAllocator& alloc_for(int device) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto& v = allocators();
    if (device >= static_cast<int>(v.size())) v.resize(device + 1);
    if (!v[device]) v[device] = std::make_unique<DeviceAllocator>(device);
    return *v[device];
}

Block* dev_malloc(int device, size_t bytes, void* stream) {
    return alloc_for(device).malloc(bytes, as_stream(stream));
}
void dev_free(Block* b) { alloc_for(b->device).free(b); }
void* block_ptr(const Block* b) { return b->ptr; }
size_t block_size(const Block* b) { return b->size; }
void block_record_stream(Block* b, void* s) { alloc_for(b->device).record_stream(b, as_stream(s)); }
AllocStats alloc_stats(int device) { return alloc_for(device).stats(); }
void reset_peak(int device) { alloc_for(device).reset_peak(); }
void empty_cache(int device) { alloc_for(device).empty_cache(); }
std::string alloc_snapshot(int device) { return alloc_for(device).snapshot(); }

// ---- pinned host memory: page-locked buffers (the DMA engine reads them directly, and
// host-to-device copies from them are asynchronous), cached by power-of-two size
struct PinnedInfo {
    size_t size;
    std::vector<cudaEvent_t> events;
};
static std::mutex p_mu;
static std::map<void*, PinnedInfo>& pinned_live() { static auto* m = new std::map<void*, PinnedInfo>(); return *m; }
static std::multimap<size_t, void*>& pinned_free_list() { static auto* m = new std::multimap<size_t, void*>(); return *m; }
static std::vector<void*>& pinned_waiting() { static auto* v = new std::vector<void*>(); return *v; }
static int64_t g_pinned_reserved = 0;

static bool events_done(PinnedInfo& info) {
    for (auto it = info.events.begin(); it != info.events.end();) {
        if (cudaEventQuery(*it) == cudaErrorNotReady) return false;
        cudaGetLastError();
        cudaEventDestroy(*it);
        it = info.events.erase(it);
    }
    return true;
}

void* pinned_malloc(size_t bytes) {
    std::lock_guard<std::mutex> lock(p_mu);
    auto& waiting = pinned_waiting();
    for (auto it = waiting.begin(); it != waiting.end();) {  // blocks whose copies finished
        auto& info = pinned_live()[*it];
        if (events_done(info)) {
            pinned_free_list().insert({info.size, *it});
            it = waiting.erase(it);
        } else {
            ++it;
        }
    }
    size_t size = 4096;
    while (size < bytes) size <<= 1;
    auto& fl = pinned_free_list();
    auto it = fl.find(size);
    void* p = nullptr;
    if (it != fl.end()) {
        p = it->second;
        fl.erase(it);
        return p;
    }
    cudaError_t e = cudaHostAlloc(&p, size, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        cudaGetLastError();
        throw OutOfMemory("pinned host memory: cudaHostAlloc of " + std::to_string(size) +
                          " bytes failed: " + cudaGetErrorString(e));
    }
    pinned_live()[p] = PinnedInfo{size, {}};
    g_pinned_reserved += size;
    return p;
}

void pinned_free(void* p) {
    std::lock_guard<std::mutex> lock(p_mu);
    auto& info = pinned_live()[p];
    if (events_done(info))
        pinned_free_list().insert({info.size, p});
    else
        pinned_waiting().push_back(p);
}

void pinned_record(void* p, void* stream) {
    std::lock_guard<std::mutex> lock(p_mu);
    // the block holding p (p may point into it: a view of a pinned array)
    auto& live = pinned_live();
    auto it = live.upper_bound(p);
    if (it == live.begin()) return;  // not pinned: a pageable copy is staged before it returns
    --it;
    if (static_cast<char*>(p) >= static_cast<char*>(it->first) + it->second.size) return;
    cudaEvent_t e;
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventRecord(e, as_stream(stream)) != cudaSuccess) {
        cudaGetLastError();
        cudaStreamSynchronize(as_stream(stream));
        return;
    }
    it->second.events.push_back(e);
}

int64_t pinned_reserved() {
    std::lock_guard<std::mutex> lock(p_mu);
    return g_pinned_reserved;
}

}  // namespace tfc

//! Go 1.19's `sort.Sort`, step for step: pattern-defeating quicksort, which is not
//! stable. confd sorts with it (`sortByLength`, `sortKVByLength`, `lookupSRV`), so the
//! order it leaves elements that compare equal in is part of what a template prints:
//! up to 12 elements it is an insertion sort (equal elements keep their order); past
//! that, equal elements move as Go's partitions move them.
//!
//! A transcription of `sort/zsortinterface.go` (Go 1.19), including the quirk of
//! `partialInsertionSort`, whose leftward shift runs down to index 1 rather than `a`.

/// Sorts `v` as Go 1.19's `sort.Sort` does with `Less(i, j) = less(&v[i], &v[j])`.
pub fn sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let mut d = Data { v, less: &less };
    let limit = bits_len(n);
    pdqsort(&mut d, 0, n, limit);
}

struct Data<'s, T> {
    v: &'s mut [T],
    less: &'s dyn Fn(&T, &T) -> bool,
}

impl<T> Data<'_, T> {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(&self.v[i], &self.v[j])
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.v.swap(i, j);
    }
}

/// Go's `bits.Len(uint(n))`: the number of bits needed to hold `n`.
fn bits_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Unknown,
    Increasing,
    Decreasing,
}

fn insertion_sort<T>(d: &mut Data<T>, a: usize, b: usize) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && d.less(j, j - 1) {
            d.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sift_down<T>(d: &mut Data<T>, lo: usize, hi: usize, first: usize) {
    let mut root = lo;
    loop {
        let mut child = 2 * root + 1;
        if child >= hi {
            break;
        }
        if child + 1 < hi && d.less(first + child, first + child + 1) {
            child += 1;
        }
        if !d.less(first + root, first + child) {
            return;
        }
        d.swap(first + root, first + child);
        root = child;
    }
}

fn heap_sort<T>(d: &mut Data<T>, a: usize, b: usize) {
    let first = a;
    let hi = b - a;
    for i in (0..=(hi - 1) / 2).rev() {
        sift_down(d, i, hi, first);
    }
    for i in (0..hi).rev() {
        d.swap(first, first + i);
        sift_down(d, 0, i, first);
    }
}

fn pdqsort<T>(d: &mut Data<T>, mut a: usize, mut b: usize, mut limit: usize) {
    const MAX_INSERTION: usize = 12;
    let mut was_balanced = true;
    let mut was_partitioned = true;
    loop {
        let length = b - a;
        if length <= MAX_INSERTION {
            insertion_sort(d, a, b);
            return;
        }
        if limit == 0 {
            heap_sort(d, a, b);
            return;
        }
        if !was_balanced {
            break_patterns(d, a, b);
            limit -= 1;
        }
        let (mut pivot, mut hint) = choose_pivot(d, a, b);
        if hint == Hint::Decreasing {
            reverse_range(d, a, b);
            pivot = (b - 1) - (pivot - a);
            hint = Hint::Increasing;
        }
        if was_balanced
            && was_partitioned
            && hint == Hint::Increasing
            && partial_insertion_sort(d, a, b)
        {
            return;
        }
        if a > 0 && !d.less(a - 1, pivot) {
            a = partition_equal(d, a, b, pivot);
            continue;
        }
        let (mid, already) = partition(d, a, b, pivot);
        was_partitioned = already;
        let (left, right) = (mid - a, b - mid);
        let balance_threshold = length / 8;
        if left < right {
            was_balanced = left >= balance_threshold;
            pdqsort(d, a, mid, limit);
            a = mid + 1;
        } else {
            was_balanced = right >= balance_threshold;
            pdqsort(d, mid + 1, b, limit);
            b = mid;
        }
    }
}

fn partition<T>(d: &mut Data<T>, a: usize, b: usize, pivot: usize) -> (usize, bool) {
    d.swap(a, pivot);
    // Go's i and j are ints; j may reach a (never below it), so usize is enough.
    let (mut i, mut j) = (a + 1, b - 1);
    while i <= j && d.less(i, a) {
        i += 1;
    }
    while i <= j && !d.less(j, a) {
        j -= 1;
    }
    if i > j {
        d.swap(j, a);
        return (j, true);
    }
    d.swap(i, j);
    i += 1;
    j -= 1;
    loop {
        while i <= j && d.less(i, a) {
            i += 1;
        }
        while i <= j && !d.less(j, a) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
    d.swap(j, a);
    (j, false)
}

fn partition_equal<T>(d: &mut Data<T>, a: usize, b: usize, pivot: usize) -> usize {
    d.swap(a, pivot);
    let (mut i, mut j) = (a + 1, b - 1);
    loop {
        while i <= j && !d.less(a, i) {
            i += 1;
        }
        while i <= j && d.less(a, j) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
    i
}

fn partial_insertion_sort<T>(d: &mut Data<T>, a: usize, b: usize) -> bool {
    const MAX_STEPS: usize = 5;
    const SHORTEST_SHIFTING: usize = 50;
    let mut i = a + 1;
    for _ in 0..MAX_STEPS {
        while i < b && !d.less(i, i - 1) {
            i += 1;
        }
        if i == b {
            return true;
        }
        if b - a < SHORTEST_SHIFTING {
            return false;
        }
        d.swap(i, i - 1);
        // Shift the smaller one to the left (Go stops at 1, not at a).
        if i - a >= 2 {
            let mut j = i - 1;
            while j >= 1 {
                if !d.less(j, j - 1) {
                    break;
                }
                d.swap(j, j - 1);
                j -= 1;
            }
        }
        // Shift the greater one to the right.
        if b - i >= 2 {
            for j in i + 1..b {
                if !d.less(j, j - 1) {
                    break;
                }
                d.swap(j, j - 1);
            }
        }
    }
    false
}

fn break_patterns<T>(d: &mut Data<T>, a: usize, b: usize) {
    let length = b - a;
    if length >= 8 {
        let mut random = length as u64; // Go's xorshift, seeded with the length
        let modulus = 1usize << bits_len(length);
        for idx in a + (length / 4) * 2 - 1..=a + (length / 4) * 2 + 1 {
            random ^= random << 13;
            random ^= random >> 17;
            random ^= random << 5;
            let mut other = (random as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            d.swap(idx, a + other);
        }
    }
}

fn choose_pivot<T>(d: &mut Data<T>, a: usize, b: usize) -> (usize, Hint) {
    const SHORTEST_NINTHER: usize = 50;
    const MAX_SWAPS: usize = 4 * 3;
    let l = b - a;
    let mut swaps = 0;
    let mut i = a + l / 4;
    let mut j = a + l / 4 * 2;
    let mut k = a + l / 4 * 3;
    if l >= 8 {
        if l >= SHORTEST_NINTHER {
            i = median(d, i - 1, i, i + 1, &mut swaps);
            j = median(d, j - 1, j, j + 1, &mut swaps);
            k = median(d, k - 1, k, k + 1, &mut swaps);
        }
        j = median(d, i, j, k, &mut swaps);
    }
    match swaps {
        0 => (j, Hint::Increasing),
        MAX_SWAPS => (j, Hint::Decreasing),
        _ => (j, Hint::Unknown),
    }
}

fn order2<T>(d: &Data<T>, a: usize, b: usize, swaps: &mut usize) -> (usize, usize) {
    if d.less(b, a) {
        *swaps += 1;
        return (b, a);
    }
    (a, b)
}

fn median<T>(d: &Data<T>, a: usize, b: usize, c: usize, swaps: &mut usize) -> usize {
    let (a, b) = order2(d, a, b, swaps);
    let (b, c) = order2(d, b, c, swaps);
    let _ = c;
    let (_, b) = order2(d, a, b, swaps);
    b
}

fn reverse_range<T>(d: &mut Data<T>, a: usize, b: usize) {
    let (mut i, mut j) = (a, b - 1);
    while i < j {
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length class of element `i` of `n` in each input family: mixed, ascending
    /// (like `getvs`'s sorted values), descending, and repeating squares.
    fn class(family: usize, i: usize, n: usize) -> usize {
        match family {
            0 => (i * 7 + i / 3) % 3,
            1 => i * 3 / n,
            2 => (n - 1 - i) * 3 / n,
            _ => (i * i) % 5,
        }
    }

    /// Go 1.19's `sort.Sort` of `n` elements by their class, as the indices it leaves
    /// them at; printed by a Go program that builds the same inputs.
    #[rustfmt::skip]
    const GO: &[(usize, usize, &str)] = &[
        (0, 5, "0,1,3,2,4"),
        (0, 13, "5,9,7,0,3,8,1,10,12,4,6,2,11"),
        (0, 40, "14,36,34,32,0,5,27,7,25,9,23,18,16,30,3,39,12,17,37,19,1,21,35,10,28,8,26,33,24,29,4,31,13,6,2,22,20,11,38,15"),
        (0, 60, "23,59,54,52,50,5,45,7,0,9,43,41,36,34,14,32,16,27,18,25,44,39,1,57,55,19,26,17,28,53,30,3,48,46,8,35,12,37,10,21,4,20,42,38,13,6,33,40,22,11,47,51,31,29,2,24,56,49,58,15"),
        (0, 200, "68,198,196,194,189,5,187,7,185,9,180,178,176,171,14,169,16,167,18,162,160,158,153,23,151,25,149,27,144,142,140,135,32,133,34,131,36,126,124,122,117,41,115,43,113,45,108,106,104,0,50,99,52,97,54,95,90,88,86,59,81,61,79,63,77,72,70,100,170,199,66,71,1,73,197,75,3,64,192,62,80,190,82,188,84,8,183,181,57,89,10,91,179,93,12,55,174,53,98,172,134,17,102,165,48,163,19,107,46,109,161,111,21,44,156,154,116,152,118,26,120,147,39,145,28,125,37,127,143,129,30,35,138,136,33,31,67,137,132,139,130,141,29,128,38,123,146,121,148,119,150,24,40,22,42,155,114,157,112,159,20,110,47,105,164,103,166,101,168,15,49,13,51,173,96,175,94,177,11,92,56,87,182,58,184,85,186,6,83,4,60,191,78,193,76,195,2,74,65,69"),
        (1, 5, "0,1,2,3,4"),
        (1, 13, "0,1,2,3,4,5,6,7,8,9,10,11,12"),
        (1, 40, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39"),
        (1, 60, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59"),
        (1, 200, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179,180,181,182,183,184,185,186,187,188,189,190,191,192,193,194,195,196,197,198,199"),
        (2, 5, "3,4,1,2,0"),
        (2, 13, "8,12,11,10,9,6,7,5,4,0,3,2,1"),
        (2, 40, "26,39,38,37,36,35,34,33,32,31,30,29,28,27,20,13,16,17,18,19,15,21,22,23,24,25,14,7,12,11,10,9,8,0,6,5,4,3,2,1"),
        (2, 60, "40,59,58,57,56,55,54,53,52,51,50,49,48,47,46,45,44,43,42,41,30,20,22,23,24,25,26,27,28,29,21,31,32,33,34,35,36,37,38,39,0,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1"),
        (2, 200, "133,199,198,197,196,195,194,193,192,191,190,189,188,187,186,185,184,183,182,181,180,179,178,177,176,175,174,173,172,171,170,169,168,167,166,165,164,163,162,161,160,159,158,157,156,155,154,153,152,151,150,149,148,147,146,145,144,143,142,141,140,139,138,137,136,135,134,100,66,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,68,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,67,34,53,64,63,62,61,60,59,58,57,56,55,54,33,52,51,50,49,48,47,46,45,44,43,42,41,40,39,38,37,32,35,29,65,36,31,30,0,28,27,26,25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1"),
        (3, 5, "0,1,4,2,3"),
        (3, 13, "5,10,0,9,4,6,1,11,3,7,8,2,12"),
        (3, 40, "20,10,35,30,25,5,0,15,34,24,39,11,36,19,14,31,16,29,6,1,26,21,4,9,23,7,17,27,28,18,3,22,32,33,13,2,12,37,38,8"),
        (3, 60, "15,55,50,45,40,5,35,30,0,25,10,20,29,6,14,59,16,56,1,19,11,21,54,51,24,9,26,49,46,44,41,31,4,39,34,36,48,57,38,33,32,7,42,43,8,3,12,37,2,27,13,23,52,53,22,18,17,47,58,28"),
        (3, 200, "40,195,190,185,180,5,175,170,165,160,10,155,150,145,140,15,135,130,125,120,20,115,110,105,100,25,0,95,90,85,30,80,75,70,65,35,60,55,50,45,99,19,199,196,44,39,46,1,194,49,191,51,189,186,54,184,56,181,4,59,36,61,179,176,64,34,66,6,174,69,171,71,169,166,74,164,76,161,9,79,31,81,159,156,84,29,86,11,154,89,151,91,149,146,94,144,96,141,14,26,24,101,139,136,104,16,106,134,131,109,129,111,126,124,114,21,116,121,41,119,78,188,122,123,113,18,112,127,128,22,17,108,132,133,107,23,103,137,138,102,98,97,142,143,27,13,93,147,148,92,12,28,152,153,88,87,83,157,32,117,158,77,162,163,118,8,73,167,168,72,7,33,172,173,68,67,63,177,178,62,58,57,182,183,37,3,53,187,82,52,2,38,192,193,48,47,43,197,198,42"),
    ];

    #[test]
    fn equal_elements_end_where_go_leaves_them() {
        for &(family, n, want) in GO {
            let mut v: Vec<(usize, usize)> = (0..n).map(|i| (class(family, i, n), i)).collect();
            sort(&mut v, |a, b| a.0 < b.0);
            let got: Vec<String> = v.iter().map(|(_, i)| i.to_string()).collect();
            assert_eq!(got.join(","), want, "family {family}, {n} elements");
        }
    }
}

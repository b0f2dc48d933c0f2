//! [`Value`] and [`Array`]: plain data in shared memory, behind a robust lock.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::mutex::{Acquired, Held, RawMutex, Wait};
use super::segment::{Header, Segment};
use super::{LockError, LockResult, Plain, SharedError};

/// The header of a [`Value`] or an [`Array`]: the lock, and the shape of the data, so that a
/// process can check that the segment it received holds what its type says.
#[repr(C)]
pub(crate) struct CellsHeader {
    mutex: RawMutex,
    /// Set when `get`, `set` or `update` recovered the lock from a dead holder, so that the next
    /// `lock()` is still told.
    owner_died: AtomicU32,
    elem_size: AtomicU32,
    elem_align: AtomicU32,
    len: AtomicU64,
}

// SAFETY: `#[repr(C)]`, 8-byte aligned, made only of atomics and a mutex.
unsafe impl Header for CellsHeader {
    const KIND: u32 = 1;
    const NAME: &'static str = "Value or Array";
}

/// `len` elements of `T` in a segment, and their lock: what [`Value`] and [`Array`] share.
struct Cells<T> {
    segment: Arc<Segment<CellsHeader>>,
    len: usize,
    _data: PhantomData<T>,
}

impl<T> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells {
            segment: Arc::clone(&self.segment),
            len: self.len,
            _data: PhantomData,
        }
    }
}

impl<T: Plain> Cells<T> {
    /// Where the elements start within the data region, so that they are aligned (the segment
    /// is page-aligned, and pages are at least 4 KiB).
    fn offset() -> usize {
        const { assert!(align_of::<T>() <= 4096) };
        let at = Segment::<CellsHeader>::DATA_AT;
        at.next_multiple_of(align_of::<T>()) - at
    }

    fn new(values: &[T]) -> Result<Self, SharedError> {
        let too_large = || {
            SharedError::Invalid(format!(
                "an array of {} elements of {} bytes is larger than memory can be",
                values.len(),
                size_of::<T>()
            ))
        };
        let bytes = values
            .len()
            .checked_mul(size_of::<T>())
            .and_then(|bytes| bytes.checked_add(Self::offset()))
            .ok_or_else(too_large)?;
        let segment = Segment::<CellsHeader>::create(bytes)?;
        let header = segment.header();
        header.mutex.init(false)?;
        header
            .elem_size
            .store(size_of::<T>() as u32, Ordering::Relaxed);
        header
            .elem_align
            .store(align_of::<T>() as u32, Ordering::Relaxed);
        header.len.store(values.len() as u64, Ordering::Relaxed);
        let cells = Cells {
            segment: Arc::new(segment),
            len: values.len(),
            _data: PhantomData,
        };
        // SAFETY: the data region holds `len` aligned elements (sized above); no other process
        // or thread knows the segment yet, so nothing else touches it.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), cells.data(), values.len()) };
        Ok(cells)
    }

    /// Checks that a received segment holds elements of `T`.
    fn open(segment: Segment<CellsHeader>) -> Result<Self, String> {
        let header = segment.header();
        let (size, align) = (
            header.elem_size.load(Ordering::Acquire) as usize,
            header.elem_align.load(Ordering::Acquire) as usize,
        );
        let len = header.len.load(Ordering::Acquire);
        let fits = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_mul(size_of::<T>()))
            .and_then(|bytes| bytes.checked_add(Self::offset()))
            .is_some_and(|bytes| bytes <= segment.data_len());
        if size != size_of::<T>() || align != align_of::<T>() || !fits {
            return Err(format!(
                "the shared memory received for a Value or Array of `{}` holds elements of {size} bytes aligned to {align}, {len} of them",
                std::any::type_name::<T>()
            ));
        }
        Ok(Cells {
            segment: Arc::new(segment),
            len: len as usize,
            _data: PhantomData,
        })
    }

    fn data(&self) -> *mut T {
        // SAFETY: the offset is within the data region (sized or checked in `new`/`open`).
        unsafe { self.segment.data().add(Self::offset()).cast() }
    }

    fn header(&self) -> &CellsHeader {
        self.segment.header()
    }

    /// Locks for `lock()`: [`Acquired::OwnerDied`] if a holder died since the last `lock()`.
    fn lock(&self, wait: Wait) -> Result<(Held<'_>, Acquired), SharedError> {
        let (held, acquired) = self.header().mutex.acquire(wait)?;
        let pending = self.header().owner_died.swap(0, Ordering::Relaxed) != 0;
        let acquired = if pending {
            Acquired::OwnerDied
        } else {
            acquired
        };
        Ok((held, acquired))
    }

    /// Locks without reporting a dead holder: the news is left for the next `lock()`.
    fn acquire_quietly(&self, wait: Wait) -> Result<Held<'_>, SharedError> {
        let (held, acquired) = self.header().mutex.acquire(wait)?;
        if acquired == Acquired::OwnerDied {
            self.header().owner_died.store(1, Ordering::Relaxed);
        }
        Ok(held)
    }

    /// Locks for `get`, `set` and `update`, which do not report a dead holder.
    fn lock_quietly(&self, operation: &str) -> Held<'_> {
        match self.acquire_quietly(Wait::Forever) {
            Ok(held) => held,
            Err(SharedError::AlreadyHeld) => panic!(
                "{operation} was called by a thread that holds the lock of this value (a guard from `lock()`); use the guard instead"
            ),
            Err(error) => panic!("{operation} could not lock the shared memory: {error}"),
        }
    }

    /// Reads element `i` under the lock.
    fn read(&self, i: usize, operation: &str) -> T {
        assert!(
            i < self.len,
            "index {i} is out of bounds for an Array of length {}",
            self.len
        );
        let _held = self.lock_quietly(operation);
        // SAFETY: `i` is in bounds; the lock is held, so no process writes the element now, and
        // `T: Plain` makes whatever bytes a `T` left there a valid `T`.
        unsafe { self.data().add(i).read() }
    }

    /// Writes element `i` under the lock.
    fn write(&self, i: usize, value: T, operation: &str) {
        assert!(
            i < self.len,
            "index {i} is out of bounds for an Array of length {}",
            self.len
        );
        let _held = self.lock_quietly(operation);
        // SAFETY: `i` is in bounds; the lock is held, so no process reads or writes it now.
        unsafe { self.data().add(i).write(value) }
    }

    /// Runs `f` on all elements under the lock.
    fn update<R>(&self, f: impl FnOnce(&mut [T]) -> R, operation: &str) -> R {
        let _held = self.lock_quietly(operation);
        // SAFETY: the elements are in bounds and valid (`T: Plain`); the lock is held until the
        // slice is gone, so no process touches them meanwhile.
        f(unsafe { std::slice::from_raw_parts_mut(self.data(), self.len) })
    }

    /// The elements, if the lock is free right now (for `Debug`, which must not wait).
    fn snapshot(&self) -> Option<Vec<T>> {
        let _held = self.acquire_quietly(Wait::Never).ok()?;
        // SAFETY: as in `update`, reading only.
        Some(unsafe { std::slice::from_raw_parts(self.data(), self.len) }.to_vec())
    }
}

impl<T> Serialize for Cells<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.segment.serialize(serializer)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Cells<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let segment = Segment::<CellsHeader>::deserialize(deserializer)?;
        Cells::open(segment).map_err(serde::de::Error::custom)
    }
}

/// A `T` in memory shared between processes, with a lock: Python's
/// `multiprocessing.Value`.
///
/// Pass it to a task as an ordinary argument; every process that has it (or a clone of it)
/// reads and writes the same `T`. [`get`](Value::get) and [`set`](Value::set) each take the
/// lock for the copy; a read-modify-write such as `+= 1` needs the lock for the whole step:
/// [`update`](Value::update), or the guard of [`lock`](Value::lock).
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn count(counter: Value<u64>) {
///     for _ in 0..1000 {
///         counter.update(|n| *n += 1);
///     }
/// }
///
/// let counter = Value::new(0_u64)?;
/// let children = (0..4)
///     .map(|_| count.spawn(counter.clone())) // four child processes
///     .collect::<Result<Vec<_>, _>>()?;
/// for child in children {
///     child.join()?;
/// }
/// assert_eq!(counter.get(), 4000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `T` is [`Plain`] data: numbers, `bool`, `char`, arrays and tuples of them, or your own
/// `Copy` type that you declare `Plain`. The memory is freed when the last process holding the
/// value ends, however it ends; nothing is left in `/dev/shm`.
///
/// If a process dies while holding the lock (through [`lock`](Value::lock)), the next
/// [`lock`](Value::lock) is told with a [`LockError::OwnerDied`]; `get`, `set` and `update`
/// carry on without telling, since a `Plain` value is valid however far the writer got.
pub struct Value<T: Plain> {
    cells: Cells<T>,
}

impl<T: Plain> Value<T> {
    /// A new shared value.
    pub fn new(value: T) -> Result<Self, SharedError> {
        Ok(Value {
            cells: Cells::new(&[value])?,
        })
    }

    /// A copy of the value.
    ///
    /// # Panics
    ///
    /// If the calling thread holds the value's lock (a guard of [`lock`](Value::lock)): use the
    /// guard. The same holds for [`set`](Value::set) and [`update`](Value::update).
    pub fn get(&self) -> T {
        self.cells.read(0, "Value::get")
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        self.cells.write(0, value, "Value::set");
    }

    /// Runs `f` on the value under the lock, as one step that no other process can cut into,
    /// and returns what `f` returns.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.cells.update(|cells| f(&mut cells[0]), "Value::update")
    }

    /// Takes the lock and gives access to the value until the guard is dropped. The error
    /// carries the guard when the previous holder died ([`LockError::OwnerDied`]).
    pub fn lock(&self) -> LockResult<ValueGuard<'_, T>> {
        LockError::from_acquired(self.cells.lock(Wait::Forever), |held| ValueGuard {
            _held: held,
            value: self.cells.data(),
            _data: PhantomData,
        })
    }
}

impl<T: Plain> Clone for Value<T> {
    /// Another handle to the same shared value.
    fn clone(&self) -> Self {
        Value {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Value");
        match self.cells.snapshot() {
            Some(values) => out.field("value", &values[0]),
            None => out.field("value", &format_args!("<locked>")),
        };
        out.finish()
    }
}

impl<T: Plain> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(serializer)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let cells = Cells::<T>::deserialize(deserializer)?;
        if cells.len != 1 {
            return Err(serde::de::Error::custom(format!(
                "the shared memory received for a `Value<{0}>` holds an `Array<{0}>` of {1} elements: pass a Value, or take an Array",
                std::any::type_name::<T>(),
                cells.len
            )));
        }
        Ok(Value { cells })
    }
}

/// Access to a [`Value`] while its lock is held; dropping it releases the lock.
pub struct ValueGuard<'a, T: Plain> {
    _held: Held<'a>,
    value: *mut T,
    _data: PhantomData<&'a mut T>,
}

impl<T: Plain> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the pointer is the value's aligned, in-bounds element; the lock is held for
        // the guard's life, so no process writes it; `T: Plain` makes its bytes a valid `T`.
        unsafe { &*self.value }
    }
}

impl<T: Plain> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the lock also keeps every other process from reading it.
        unsafe { &mut *self.value }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

/// `len` `T`s in memory shared between processes, with one lock: Python's
/// `multiprocessing.Array`.
///
/// Like [`Value`], but with [`get(i)`](Array::get) and [`set(i, v)`](Array::set) for one
/// element, [`to_vec`](Array::to_vec) for all of them, and [`update`](Array::update) or
/// [`lock`](Array::lock) for a step over the whole slice that no other process can cut into.
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn square_all(numbers: Array<i32>) {
///     numbers.update(|numbers| numbers.iter_mut().for_each(|n| *n *= *n));
/// }
///
/// let numbers = Array::from_slice(&[1, 2, 3, 4])?;
/// square_all.spawn(numbers.clone())?.join()?;
/// assert_eq!(numbers.to_vec(), [1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Array<T: Plain> {
    cells: Cells<T>,
}

impl<T: Plain> Array<T> {
    /// An array of `len` default values (zeroes, for numbers).
    pub fn new(len: usize) -> Result<Self, SharedError>
    where
        T: Default,
    {
        Array::from_slice(&vec![T::default(); len])
    }

    /// An array holding a copy of `values`.
    pub fn from_slice(values: &[T]) -> Result<Self, SharedError> {
        Ok(Array {
            cells: Cells::new(values)?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// A copy of element `i`.
    ///
    /// # Panics
    ///
    /// If `i` is out of bounds, or if the calling thread holds the array's lock (a guard of
    /// [`lock`](Array::lock)). The same holds for the other methods that take an index or the
    /// lock.
    pub fn get(&self, i: usize) -> T {
        self.cells.read(i, "Array::get")
    }

    /// Replaces element `i`.
    pub fn set(&self, i: usize, value: T) {
        self.cells.write(i, value, "Array::set");
    }

    /// A copy of all the elements, taken at one moment.
    pub fn to_vec(&self) -> Vec<T> {
        self.cells.update(|cells| cells.to_vec(), "Array::to_vec")
    }

    /// Runs `f` on the elements under the lock and returns what it returns.
    pub fn update<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        self.cells.update(f, "Array::update")
    }

    /// Takes the lock and gives access to the elements until the guard is dropped. The error
    /// carries the guard when the previous holder died ([`LockError::OwnerDied`]).
    pub fn lock(&self) -> LockResult<ArrayGuard<'_, T>> {
        LockError::from_acquired(self.cells.lock(Wait::Forever), |held| ArrayGuard {
            _held: held,
            data: self.cells.data(),
            len: self.cells.len,
            _data: PhantomData,
        })
    }
}

impl<T: Plain> Clone for Array<T> {
    /// Another handle to the same shared array.
    fn clone(&self) -> Self {
        Array {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Array");
        match self.cells.snapshot() {
            Some(values) => out.field("values", &values),
            None => out.field("values", &format_args!("<locked>")),
        };
        out.finish()
    }
}

impl<T: Plain> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(serializer)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Cells::deserialize(deserializer).map(|cells| Array { cells })
    }
}

/// Access to the elements of an [`Array`] while its lock is held; dropping it releases the lock.
pub struct ArrayGuard<'a, T: Plain> {
    _held: Held<'a>,
    data: *mut T,
    len: usize,
    _data: PhantomData<&'a mut [T]>,
}

impl<T: Plain> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the pointer and length describe the array's aligned, in-bounds elements; the
        // lock is held for the guard's life, so no process writes them; `T: Plain` makes their
        // bytes valid `T`s.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl<T: Plain> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the lock also keeps every other process from reading them.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_arrays_read_back_what_was_written() {
        let value = Value::new((1_u8, 2.5_f64)).unwrap();
        assert_eq!(value.get(), (1, 2.5));
        value.set((3, -1.0));
        let other = value.clone();
        assert_eq!(other.get(), (3, -1.0));
        other.update(|(a, _)| *a += 1);
        assert_eq!(value.get().0, 4);
        *value.lock().unwrap() = (9, 0.0);
        assert_eq!(other.get(), (9, 0.0));

        let array = Array::<char>::from_slice(&['a', 'b', 'c']).unwrap();
        assert_eq!(array.len(), 3);
        array.set(1, 'é');
        assert_eq!(array.get(1), 'é');
        array.lock().unwrap().reverse();
        assert_eq!(array.to_vec(), ['c', 'é', 'a']);
        assert_eq!(format!("{array:?}"), "Array { values: ['c', 'é', 'a'] }");
        assert!(Array::<u64>::new(0).unwrap().is_empty());
        assert_eq!(Array::<u16>::new(5).unwrap().to_vec(), [0; 5]);
    }

    #[test]
    fn the_holder_of_the_lock_cannot_deadlock_itself() {
        let value = Value::new(1_u32).unwrap();
        let guard = value.lock().unwrap();
        assert_eq!(format!("{value:?}"), "Value { value: <locked> }");
        assert!(matches!(
            value.cells.lock(Wait::Forever),
            Err(SharedError::AlreadyHeld)
        ));
        drop(guard);
        assert_eq!(format!("{value:?}"), "Value { value: 1 }");
    }

    #[test]
    fn debug_leaves_the_news_of_a_dead_holder_for_the_next_lock() {
        let value = Value::new(5_u32).unwrap();
        let other = value.clone();
        // Joined, not scoped: the join waits for the thread's end, when the kernel marks the
        // mutex, where a scope only waits for its closure.
        std::thread::spawn(move || std::mem::forget(other.lock().unwrap()))
            .join()
            .unwrap();
        assert_eq!(format!("{value:?}"), "Value { value: 5 }");
        assert!(value.lock().unwrap_err().is_owner_died());
        assert!(value.lock().is_ok());
    }

    #[test]
    #[should_panic(expected = "index 3 is out of bounds for an Array of length 3")]
    fn an_index_out_of_bounds_panics() {
        Array::<u8>::new(3).unwrap().get(3);
    }

    #[test]
    fn a_value_travels_as_a_segment_and_checks_its_type() {
        let value = Value::new(7_u64).unwrap();
        let copy: Value<u64> = crate::shared::travel(&value).0.unwrap();
        copy.set(8);
        assert_eq!(value.get(), 8);

        let wrong = crate::shared::travel::<_, Value<u32>>(&value)
            .0
            .unwrap_err();
        assert!(wrong.to_string().contains("elements of 8 bytes"), "{wrong}");
        let same: Array<u64> = crate::shared::travel(&value).0.unwrap();
        assert_eq!(same.len(), 1);

        let array = Array::<u64>::new(2).unwrap();
        let error = crate::shared::travel::<_, Value<u64>>(&array)
            .0
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("holds an `Array<u64>` of 2 elements"),
            "{error}"
        );
    }
}

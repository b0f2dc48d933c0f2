//! [`Plain`]: the data a [`Value`](crate::Value) or an [`Array`](crate::Array) can hold.

/// Data that can live in shared memory and be read by any process that maps it: numbers, `bool`,
/// `char`, and arrays and tuples of them.
///
/// A [`Value<T>`](crate::Value) or [`Array<T>`](crate::Array) keeps its `T`s as bytes in memory
/// that several processes map, and each reads back what another wrote. That is only sound for
/// types whose bytes mean the same thing in every process.
///
/// # Safety
///
/// Implement it for your own type only if all of these hold (a `#[derive(Clone, Copy)]` struct
/// of `Plain` fields meets them):
///
/// - it holds no pointer or reference, and nothing else whose meaning is private to one process
///   (a `Box`, a `&str`, a `Vec` cannot be `Copy` anyway; a raw pointer or a `&'static` can);
/// - any bytes that values of the type have written there are a valid value of the type: the
///   bytes another process wrote, and, if a process was killed in the middle of writing a
///   value, a mix of the old and the new value's fields (each field of a primitive type is
///   written whole; a type whose fields must agree with each other, such as a `NonZero` next to
///   a flag saying it is set, may then see them disagree, which must not be undefined behaviour).
///
/// The layout of the type is the same in every process because they all run the same program.
pub unsafe trait Plain: Copy + Send + 'static {}

macro_rules! plain {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: a primitive holds no pointer; it is written whole, so what a process reads
            // is a value some process wrote.
            unsafe impl Plain for $t {}
        )*
    };
}

plain!(u8, u16, u32, u64, u128, usize);
plain!(i8, i16, i32, i64, i128, isize);
plain!(f32, f64, bool, char, ());

// SAFETY: an array of `Plain` elements holds what its elements hold; a partly written array is a
// mix of whole elements, each valid.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

macro_rules! plain_tuple {
    ($($name:ident),+) => {
        // SAFETY: a tuple of `Plain` fields holds what its fields hold; a partly written tuple
        // is a mix of whole fields, each valid.
        unsafe impl<$($name: Plain),+> Plain for ($($name,)+) {}
    };
}

plain_tuple!(A);
plain_tuple!(A, B);
plain_tuple!(A, B, C);
plain_tuple!(A, B, C, D);

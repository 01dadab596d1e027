//! [`StepIds`]: what [`WorkflowStep::after`](super::WorkflowStep::after) takes.

/// Step ids for [`WorkflowStep::after`](super::WorkflowStep::after): arrays, slices and `Vec`s of `&str`
/// or `String` (owned or borrowed), and iterators made with `map`, `cloned`
/// or `into_iter` over those. (Not any iterator by one blanket impl: then
/// `after([])` could not tell what it holds; [`after_input`](super::WorkflowStep::after_input)
/// says "the workflow input" without an empty list.)
pub trait StepIds {
    /// The ids.
    fn into_ids(self) -> Vec<String>;
}

impl<const N: usize> StepIds for [&str; N] {
    fn into_ids(self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

impl StepIds for &[&str] {
    fn into_ids(self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

impl StepIds for &[String] {
    fn into_ids(self) -> Vec<String> {
        self.to_vec()
    }
}

impl StepIds for Vec<&str> {
    fn into_ids(self) -> Vec<String> {
        self.into_iter().map(str::to_string).collect()
    }
}

impl StepIds for Vec<String> {
    fn into_ids(self) -> Vec<String> {
        self
    }
}

/// Arrays of `String`s (owned or borrowed) of 1 to 32 ids: not of any
/// length, so that `after([])` still means an empty list of `&str`.
macro_rules! string_arrays {
    ($($n:literal)*) => {$(
        impl StepIds for [String; $n] {
            fn into_ids(self) -> Vec<String> {
                self.into()
            }
        }
        impl StepIds for [&String; $n] {
            fn into_ids(self) -> Vec<String> {
                self.iter().map(|s| s.to_string()).collect()
            }
        }
        impl StepIds for &[String; $n] {
            fn into_ids(self) -> Vec<String> {
                self.to_vec()
            }
        }
    )*};
}

string_arrays!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);

impl<const N: usize> StepIds for &[&str; N] {
    fn into_ids(self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

impl StepIds for &Vec<String> {
    fn into_ids(self) -> Vec<String> {
        self.clone()
    }
}

impl StepIds for &Vec<&str> {
    fn into_ids(self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

impl StepIds for Vec<&String> {
    fn into_ids(self) -> Vec<String> {
        self.into_iter().cloned().collect()
    }
}

impl StepIds for &str {
    /// One id: `after("a")`.
    fn into_ids(self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl StepIds for String {
    /// One id: `after(id)`.
    fn into_ids(self) -> Vec<String> {
        vec![self]
    }
}

impl StepIds for &String {
    fn into_ids(self) -> Vec<String> {
        vec![self.clone()]
    }
}

/// `ids.iter().map(..)`, `names.into_iter().map(..)`: any mapped iterator
/// whose items become `String`s.
impl<I, F> StepIds for std::iter::Map<I, F>
where
    std::iter::Map<I, F>: Iterator,
    <std::iter::Map<I, F> as Iterator>::Item: Into<String>,
{
    fn into_ids(self) -> Vec<String> {
        self.map(Into::into).collect()
    }
}

impl<'a, I> StepIds for std::iter::Cloned<I>
where
    I: Iterator<Item = &'a String>,
{
    fn into_ids(self) -> Vec<String> {
        self.collect()
    }
}

impl StepIds for std::slice::Iter<'_, String> {
    fn into_ids(self) -> Vec<String> {
        self.cloned().collect()
    }
}

impl StepIds for std::slice::Iter<'_, &str> {
    fn into_ids(self) -> Vec<String> {
        self.map(|s| s.to_string()).collect()
    }
}

impl StepIds for std::vec::IntoIter<String> {
    fn into_ids(self) -> Vec<String> {
        self.collect()
    }
}

impl StepIds for std::vec::IntoIter<&str> {
    fn into_ids(self) -> Vec<String> {
        self.map(str::to_string).collect()
    }
}

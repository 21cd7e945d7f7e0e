// The slice of NUnit's API that the EditMode tests use, so that mcs can compile and the console runner
// can run those same test files outside Unity (Unity compiles them against its real nunit.framework).
// Only for the console runner: not part of the UPM package.
using System;

namespace NUnit.Framework
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TestFixtureAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute { }

    public delegate void TestDelegate();

    public class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void AreEqual(double expected, double actual, double delta, string message = null)
        {
            if (!(Math.Abs(expected - actual) <= delta))
                throw new AssertionException(Prefix(message) + "expected " + expected.ToString("R") + " +/- " + delta + ", got " + actual.ToString("R"));
        }

        public static void AreEqual(object expected, object actual, string message = null)
        {
            if (!Equals(expected, actual)) throw new AssertionException(Prefix(message) + "expected <" + expected + ">, got <" + actual + ">");
        }

        public static void IsTrue(bool condition, string message = null)
        {
            if (!condition) throw new AssertionException(Prefix(message) + "expected true");
        }

        public static void IsFalse(bool condition, string message = null)
        {
            if (condition) throw new AssertionException(Prefix(message) + "expected false");
        }

        public static T Throws<T>(TestDelegate code) where T : Exception
        {
            try
            {
                code();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException("expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException("expected " + typeof(T).Name + ", nothing was thrown");
        }

        public static void Fail(string message) { throw new AssertionException(message); }

        static string Prefix(string message) { return message == null ? "" : message + ": "; }
    }
}

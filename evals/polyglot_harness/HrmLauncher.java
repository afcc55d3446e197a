package hrmharness;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.Set;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * The judge's JUnit launcher (evals/polyglot_harness.py), in place of the console launcher. Its main reads the
 * run's secret from stdin (a socket the driver filled) before any test class is loaded, and reports
 * "<secret> <pass|fail|skip> <method>" per test on the same socket; then it prints the summary and the failures
 * (the end of the output is the verdict's message) and exits 0 only if tests ran and none failed.
 */
public final class HrmLauncher {
    public static void main(String[] args) throws IOException {
        FileInputStream in = new FileInputStream(FileDescriptor.in);
        byte[] secret = new byte[32];
        int n = 0;
        for (int k; n < secret.length && (k = in.read(secret, n, secret.length - n)) > 0; ) {
            n += k;
        }
        Reporter reporter = new Reporter(new String(secret, 0, n, StandardCharsets.US_ASCII));
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        LauncherFactory.create().execute(LauncherDiscoveryRequestBuilder.request()
                .selectors(DiscoverySelectors.selectClasspathRoots(Set.of(Paths.get(args[0])))).build(),
                reporter, summary);
        TestExecutionSummary result = summary.getSummary();
        PrintWriter out = new PrintWriter(System.out);
        result.printTo(out);
        result.printFailuresTo(out, 5);
        out.flush();
        System.exit(result.getTestsFoundCount() > 0 && result.getTotalFailureCount() == 0 ? 0 : 1);
    }

    private static final class Reporter implements TestExecutionListener {
        private final String secret;
        private final FileOutputStream channel = new FileOutputStream(FileDescriptor.in);

        Reporter(String secret) {
            this.secret = secret;
        }

        @Override
        public void executionFinished(TestIdentifier test, TestExecutionResult result) {
            String status = result.getStatus() == TestExecutionResult.Status.SUCCESSFUL ? "pass"
                    : result.getStatus() == TestExecutionResult.Status.FAILED ? "fail" : "skip";
            report(test, status);
        }

        @Override
        public void executionSkipped(TestIdentifier test, String reason) {
            report(test, "skip");
        }

        private synchronized void report(TestIdentifier test, String status) {
            if (!test.isTest()) {
                return;
            }
            String name = test.getSource().filter(MethodSource.class::isInstance)
                    .map(s -> ((MethodSource) s).getMethodName()).orElse(test.getDisplayName());
            try {
                channel.write((secret + " " + status + " " + name.replace('\n', ' ') + "\n")
                        .getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                // the socket is gone: the judge finds the report missing
            }
        }
    }
}
